// SPDX-License-Identifier: MIT
#include <io/gate/card_device.hpp>

#include <io/chip.hpp>
#include <io/error.hpp>
#include <io/line_request.hpp>

#include <algorithm>
#include <ctime>
#include <map>
#include <optional>

namespace io::gate {

property quality_property(quality q) {
    return property{"Quality", datatype::int32, std::uint64_t{static_cast<std::uint32_t>(q)}};
}

metric line_metric(std::string_view name, std::optional<bool> level, std::optional<std::uint64_t> ts) {
    metric m = make_metric("Lines/" + std::string{name}, datatype::boolean, level ? value{*level} : value{}, ts);
    m.properties.push_back(quality_property(level ? quality::good : quality::bad));
    return m;
}

metric port_metric(std::string_view name, std::size_t lines, std::uint64_t v, std::optional<std::uint64_t> ts) {
    return make_metric("Ports/" + std::string{name}, lines <= 8 ? datatype::uint8 : datatype::uint64, v, ts);
}

void add_edge_properties(metric& m, std::uint64_t timestamp_ns, std::uint64_t seqno, std::uint64_t line_seqno) {
    m.properties.push_back(property{"timestamp_ns", datatype::uint64, timestamp_ns});
    m.properties.push_back(property{"seqno", datatype::uint64, seqno});
    m.properties.push_back(property{"line_seqno", datatype::uint64, line_seqno});
}

line_write check_line_write(const metric& m, const std::vector<const published_line*>& lines,
                            const std::vector<std::string>& read_only) {
    constexpr std::string_view prefix = "Lines/";
    const std::string_view name{m.name};
    line_write w;
    if (name.substr(0, prefix.size()) != prefix) {
        const bool known = std::find(read_only.begin(), read_only.end(), name) != read_only.end();
        w.status = known ? device::write_status::not_writable : device::write_status::unknown_metric;
        return w;
    }
    const auto it = std::find_if(lines.begin(), lines.end(),
                                 [&](const published_line* l) { return l->name == name.substr(prefix.size()); });
    if (it == lines.end()) {
        w.status = device::write_status::unknown_metric;
        return w;
    }
    if (!(*it)->writable || (*it)->held_elsewhere) {
        w.status = device::write_status::not_writable;
        return w;
    }
    if (!std::holds_alternative<bool>(m.val)) {
        w.status = device::write_status::bad_value;
        return w;
    }
    w.status = device::write_status::done;
    w.line = *it;
    w.level = std::get<bool>(m.val);
    return w;
}

std::int64_t monotonic_to_utc_offset_ns() noexcept {
    timespec mono{}, real{};
    ::clock_gettime(CLOCK_MONOTONIC, &mono);
    ::clock_gettime(CLOCK_REALTIME, &real);
    const auto ns = [](const timespec& t) {
        return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
    };
    return ns(real) - ns(mono);
}

std::uint64_t monotonic_to_utc_ms(std::uint64_t monotonic_ns, std::int64_t offset_ns) noexcept {
    const std::int64_t utc_ns = static_cast<std::int64_t>(monotonic_ns) + offset_ns;
    return utc_ns < 0 ? 0 : static_cast<std::uint64_t>(utc_ns / 1'000'000);
}

namespace {

struct line_slot {
    published_line line;
    bool level = false;
};

struct port_slot {
    std::string name;
    std::vector<std::size_t> lines;  // indices into the line table, bit order
    std::uint64_t value = 0;
};

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v)
        s += (s.empty() ? "" : ", ") + x;
    return s;
}

}  // namespace

struct lines_device::impl {
    line_request* request = nullptr;
    std::vector<line_slot> lines;
    std::vector<port_slot> ports;
    registration edges;
    std::function<void(std::vector<metric>)> on_data;
    std::function<void(std::error_code)> on_gone;
    std::uint64_t lost_reported = 0;

    line_slot* find_offset(unsigned offset) {
        const auto it = std::find_if(lines.begin(), lines.end(),
                                     [&](const line_slot& l) { return l.line.offset == offset; });
        return it == lines.end() ? nullptr : &*it;
    }

    static metric line_metric(const line_slot& l, std::optional<std::uint64_t> ts) {
        return gate::line_metric(l.line.name, l.line.held_elsewhere ? std::nullopt : std::optional<bool>{l.level}, ts);
    }

    static metric port_metric(const port_slot& p, std::optional<std::uint64_t> ts) {
        return gate::port_metric(p.name, p.lines.size(), p.value, ts);
    }

    std::uint64_t port_value(const port_slot& p) const {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < p.lines.size(); ++i)
            if (lines[p.lines[i]].level)
                v |= std::uint64_t{1} << i;
        return v;
    }

    void read_levels() {
        if (request == nullptr)
            return;
        // A card going away shows through its edge registration (on_gone);
        // a failed read here keeps the level last known.
        for (auto& l : lines) {
            if (l.line.held_elsewhere)
                continue;
            std::error_code ec;
            const bool v = request->get(l.line.offset, ec);
            if (!ec)
                l.level = v;
        }
        for (auto& p : ports)
            p.value = port_value(p);
    }

    void on_edges(std::span<const edge_event> events, std::error_code ec) {
        if (ec) {
            edges.reset();
            if (on_gone)
                on_gone(ec);
            return;
        }
        std::vector<metric> out;
        out.reserve(events.size() + ports.size() + 1);
        std::uint64_t last_ts = 0;
        const auto offset = monotonic_to_utc_offset_ns();
        for (const auto& e : events) {
            auto* l = find_offset(e.line);
            if (l == nullptr)
                continue;
            l->level = e.kind == edge::rising;
            last_ts = monotonic_to_utc_ms(e.timestamp_ns, offset);
            metric m = line_metric(*l, last_ts);
            add_edge_properties(m, e.timestamp_ns, e.seqno, e.line_seqno);
            out.push_back(std::move(m));
        }
        for (auto& p : ports) {
            const auto v = port_value(p);
            if (v != p.value) {
                p.value = v;
                out.push_back(port_metric(p, last_ts));
            }
        }
        if (request->lost_events() != lost_reported) {
            lost_reported = request->lost_events();
            out.push_back(make_metric("Lost events", datatype::uint64, lost_reported, utc_now_ms()));
        }
        if (!out.empty() && on_data)
            on_data(std::move(out));
    }
};

lines_device::lines_device(line_request* request, std::vector<published_line> lines, const std::vector<port>& ports,
                           event_loop& loop, std::function<void(std::vector<metric>)> on_data,
                           std::function<void(std::error_code)> on_gone)
    : impl_{std::make_unique<impl>()} {
    auto& d = *impl_;
    d.request = request;
    d.on_data = std::move(on_data);
    d.on_gone = std::move(on_gone);
    for (auto& l : lines) {
        if (!l.held_elsewhere && request == nullptr)
            throw io::usage_error("lines_device: line " + l.name + " is published but there is no request");
        d.lines.push_back(line_slot{std::move(l)});
    }
    // Ports whose every line is a published input of the request.
    for (const auto& p : ports) {
        port_slot ps{p.name, {}};
        bool all = !p.lines.empty() && p.lines.size() <= 64;
        for (const auto off : p.lines) {
            const auto* l = d.find_offset(off);
            if (l == nullptr || l->line.writable || l->line.held_elsewhere) {
                all = false;
                break;
            }
            ps.lines.push_back(static_cast<std::size_t>(l - d.lines.data()));
        }
        if (all)
            d.ports.push_back(std::move(ps));
    }
    d.read_levels();
    if (request != nullptr)
        d.edges = on_edge_events(loop, *request, [p = impl_.get()](std::span<const edge_event> ev, std::error_code ec) {
            p->on_edges(ev, ec);
        });
}

lines_device::~lines_device() = default;

std::vector<metric> lines_device::birth_metrics() {
    auto& d = *impl_;
    d.read_levels();
    std::vector<metric> out;
    for (const auto& l : d.lines)
        out.push_back(impl::line_metric(l, std::nullopt));
    for (const auto& p : d.ports)
        out.push_back(impl::port_metric(p, std::nullopt));
    out.push_back(make_metric("Lost events", datatype::uint64, d.request ? d.request->lost_events() : 0));
    return out;
}

device::write_status lines_device::write(const metric& m, std::vector<metric>& confirmed) {
    auto& d = *impl_;
    std::vector<const published_line*> lines;
    for (const auto& l : d.lines)
        lines.push_back(&l.line);
    std::vector<std::string> read_only{"Lost events"};
    for (const auto& p : d.ports)
        read_only.push_back("Ports/" + p.name);
    const auto w = check_line_write(m, lines, read_only);
    if (w.status != write_status::done)
        return w.status;
    if (d.request == nullptr)
        return write_status::not_writable;
    auto& slot = d.lines[static_cast<std::size_t>(std::find(lines.begin(), lines.end(), w.line) - lines.begin())];
    std::error_code ec;
    d.request->set(slot.line.offset, w.level, ec);
    if (!ec)
        slot.level = d.request->get(slot.line.offset, ec);
    if (ec)
        return write_status::failed;
    confirmed.push_back(impl::line_metric(slot, utc_now_ms()));
    return write_status::done;
}

void lines_device::connection_lost() {
    auto& d = *impl_;
    for (auto& l : d.lines) {
        if (!l.line.safe_level || !l.line.writable || l.line.held_elsewhere || d.request == nullptr)
            continue;
        std::error_code ec;  // nothing to report to: the next birth shows the level read then
        d.request->set(l.line.offset, *l.line.safe_level, ec);
        if (!ec)
            l.level = *l.line.safe_level;
    }
}

std::vector<std::string> lines_device::held_elsewhere() const {
    std::vector<std::string> out;
    for (const auto& l : impl_->lines)
        if (l.line.held_elsewhere)
            out.push_back(l.line.name);
    return out;
}

card_device::card_device(const card_info& card, const card_options& opt, event_loop& loop,
                         std::function<void(std::vector<metric>)> on_data, std::function<void(std::error_code)> on_gone) {
    if (card.gpiochip.empty())
        throw io::invalid_argument("card " + card.label + " has no digital lines (no gpiochip)");
    chip c{card.gpiochip};
    std::vector<line_info> infos;
    std::vector<std::string> names;
    for (unsigned off = 0; off < c.num_lines(); ++off) {
        infos.push_back(c.info(off));
        names.push_back(infos.back().name.empty() ? "L" + std::to_string(off) : infos.back().name);
    }
    for (const auto* list : {&opt.lines, &opt.writable})
        for (const auto& n : *list)
            if (std::find(names.begin(), names.end(), n) == names.end())
                throw io::invalid_argument("card " + card.label + " has no line '" + n + "'; it has " + join(names));
    for (const auto& [n, level] : opt.safe_state)
        if (std::find(opt.writable.begin(), opt.writable.end(), n) == opt.writable.end())
            throw io::invalid_argument("card " + card.label + ": safe_state names " + n + ", which is not writable");
    const auto listed = [](const std::vector<std::string>& v, const std::string& n) {
        return std::find(v.begin(), v.end(), n) != v.end();
    };
    std::vector<published_line> lines;
    auto builder = c.prepare_request();
    builder.consumer(opt.consumer);
    // The largest edge queue the kernel gives (gpiolib-cdev.c, linereq_create():
    // at most GPIO_V2_LINES_MAX * 16 = 1024 events), not 16 per requested
    // line: a burst on a few lines must wait there while the loop publishes.
    builder.event_buffer_size(1024);
    bool any = false;
    for (unsigned off = 0; off < infos.size(); ++off) {
        published_line l{off, names[off], listed(opt.writable, names[off]), infos[off].used, std::nullopt};
        if (const auto safe = opt.safe_state.find(l.name); safe != opt.safe_state.end())
            l.safe_level = safe->second;
        bool wanted = l.writable;
        if (!wanted && !opt.lines.empty())
            wanted = listed(opt.lines, l.name);
        else if (!wanted)
            wanted = port_of(card, off) != nullptr ? port_of(card, off)->input : infos[off].dir == direction::input;
        if (!wanted)
            continue;
        if (!l.held_elsewhere) {
            builder.add(off, l.writable ? line_config::output(opt.initial_output) : line_config::input(edge::both));
            any = true;
        }
        lines.push_back(std::move(l));
    }
    if (any)
        request_.emplace(builder.make());
    lines_ = std::make_unique<lines_device>(request_ ? &*request_ : nullptr, std::move(lines), c.ports(), loop,
                                            std::move(on_data), std::move(on_gone));
}

card_device::~card_device() = default;

std::vector<metric> card_device::birth_metrics() {
    return lines_->birth_metrics();
}

device::write_status card_device::write(const metric& m, std::vector<metric>& confirmed) {
    return lines_->write(m, confirmed);
}

}  // namespace io::gate
