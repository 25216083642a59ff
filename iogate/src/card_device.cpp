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

std::uint64_t monotonic_to_utc_ms(std::uint64_t monotonic_ns) noexcept {
    timespec mono{}, real{};
    ::clock_gettime(CLOCK_MONOTONIC, &mono);
    ::clock_gettime(CLOCK_REALTIME, &real);
    const auto ns = [](const timespec& t) {
        return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
    };
    const std::int64_t utc_ns = static_cast<std::int64_t>(monotonic_ns) + (ns(real) - ns(mono));
    return utc_ns < 0 ? 0 : static_cast<std::uint64_t>(utc_ns / 1'000'000);
}

namespace {

struct line_slot {
    unsigned offset;
    std::string name;
    bool output = false;
    bool held_elsewhere = false;
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

struct card_device::impl {
    card_info card;
    card_options opt;
    std::vector<line_slot> lines;
    std::vector<port_slot> ports;
    std::optional<line_request> request;
    registration edges;
    std::function<void(std::vector<metric>)> on_data;
    std::function<void(std::error_code)> on_gone;
    std::uint64_t lost_reported = 0;

    const line_slot* find(std::string_view name) const {
        for (const auto& l : lines)
            if (l.name == name)
                return &l;
        return nullptr;
    }

    static metric line_metric(const line_slot& l, std::optional<std::uint64_t> ts) {
        metric m = make_metric("Lines/" + l.name, datatype::boolean,
                               l.held_elsewhere ? value{} : value{l.level}, ts);
        m.properties.push_back(quality_property(l.held_elsewhere ? quality::bad : quality::good));
        return m;
    }

    metric port_metric(const port_slot& p, std::optional<std::uint64_t> ts) const {
        return make_metric("Ports/" + p.name, p.lines.size() <= 8 ? datatype::uint8 : datatype::uint64, p.value, ts);
    }

    std::uint64_t port_value(const port_slot& p) const {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < p.lines.size(); ++i)
            if (lines[p.lines[i]].level)
                v |= std::uint64_t{1} << i;
        return v;
    }

    void read_levels() {
        if (!request)
            return;
        for (auto& l : lines)
            if (!l.held_elsewhere)
                l.level = request->get(l.offset);
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
        out.reserve(events.size() + 2);
        std::uint64_t last_ts = 0;
        for (const auto& e : events) {
            auto it = std::find_if(lines.begin(), lines.end(), [&](const line_slot& l) { return l.offset == e.line; });
            if (it == lines.end())
                continue;
            it->level = e.kind == edge::rising;
            const auto ts = monotonic_to_utc_ms(e.timestamp_ns);
            last_ts = ts;
            metric m = make_metric("Lines/" + it->name, datatype::boolean, it->level, ts);
            m.properties.push_back(quality_property(quality::good));
            m.properties.push_back(property{"timestamp_ns", datatype::uint64, e.timestamp_ns});
            m.properties.push_back(property{"seqno", datatype::uint64, e.seqno});
            m.properties.push_back(property{"line_seqno", datatype::uint64, e.line_seqno});
            out.push_back(std::move(m));
        }
        for (auto& p : ports) {
            const auto v = port_value(p);
            if (v != p.value) {
                p.value = v;
                out.push_back(port_metric(p, last_ts));
            }
        }
        if (request && request->lost_events() != lost_reported) {
            lost_reported = request->lost_events();
            out.push_back(make_metric("Lost events", datatype::uint64, lost_reported));
        }
        if (!out.empty() && on_data)
            on_data(std::move(out));
    }
};

card_device::card_device(const card_info& card, card_options options, event_loop& loop,
                         std::function<void(std::vector<metric>)> on_data, std::function<void(std::error_code)> on_gone)
    : impl_{std::make_unique<impl>()} {
    auto& d = *impl_;
    d.card = card;
    d.opt = std::move(options);
    d.on_data = std::move(on_data);
    d.on_gone = std::move(on_gone);
    if (card.gpiochip.empty())
        throw io::invalid_argument("card " + card.label + " has no digital lines (no gpiochip)");
    chip c{card.gpiochip};
    std::vector<std::string> names;
    for (unsigned off = 0; off < c.num_lines(); ++off)
        names.push_back(c.info(off).name.empty() ? "L" + std::to_string(off) : c.info(off).name);
    for (const auto* list : {&d.opt.lines, &d.opt.writable})
        for (const auto& n : *list)
            if (std::find(names.begin(), names.end(), n) == names.end())
                throw io::invalid_argument("card " + card.label + " has no line '" + n + "'; it has " + join(names));
    const auto wanted = [&](unsigned off, const line_info& info) {
        const auto& name = names[off];
        if (std::find(d.opt.writable.begin(), d.opt.writable.end(), name) != d.opt.writable.end())
            return true;
        if (!d.opt.lines.empty())
            return std::find(d.opt.lines.begin(), d.opt.lines.end(), name) != d.opt.lines.end();
        if (const auto* p = port_of(card, off))
            return p->input;
        return info.dir == direction::input;
    };
    auto builder = c.prepare_request();
    builder.consumer(d.opt.consumer);
    bool any = false;
    for (unsigned off = 0; off < c.num_lines(); ++off) {
        const auto info = c.info(off);
        if (!wanted(off, info))
            continue;
        line_slot l{off, names[off]};
        l.output = std::find(d.opt.writable.begin(), d.opt.writable.end(), l.name) != d.opt.writable.end();
        l.held_elsewhere = info.used;
        if (!l.held_elsewhere) {
            builder.add(off, l.output ? line_config::output(d.opt.initial_output) : line_config::input(edge::both));
            any = true;
        }
        d.lines.push_back(std::move(l));
    }
    if (any) {
        d.request = builder.make();
        d.edges = on_edge_events(loop, *d.request,
                                 [p = impl_.get()](std::span<const edge_event> ev, std::error_code ec) {
                                     p->on_edges(ev, ec);
                                 });
    }
    // Ports whose every line is a published input of ours.
    for (const auto& p : c.ports()) {
        port_slot ps{p.name, {}};
        bool all = !p.lines.empty() && p.lines.size() <= 64;
        for (const auto off : p.lines) {
            auto it = std::find_if(d.lines.begin(), d.lines.end(), [&](const line_slot& l) { return l.offset == off; });
            if (it == d.lines.end() || it->output || it->held_elsewhere) {
                all = false;
                break;
            }
            ps.lines.push_back(static_cast<std::size_t>(it - d.lines.begin()));
        }
        if (all)
            d.ports.push_back(std::move(ps));
    }
    d.read_levels();
}

card_device::~card_device() = default;

std::vector<metric> card_device::birth_metrics() {
    auto& d = *impl_;
    d.read_levels();
    std::vector<metric> out;
    for (const auto& l : d.lines)
        out.push_back(impl::line_metric(l, std::nullopt));
    for (const auto& p : d.ports)
        out.push_back(d.port_metric(p, std::nullopt));
    out.push_back(make_metric("Lost events", datatype::uint64, d.request ? d.request->lost_events() : 0));
    return out;
}

device::write_status card_device::write(const metric& m, std::vector<metric>& confirmed) {
    auto& d = *impl_;
    constexpr std::string_view prefix = "Lines/";
    if (m.name.compare(0, prefix.size(), prefix) != 0)
        return d.find(m.name) == nullptr && m.name != "Lost events" && m.name.rfind("Ports/", 0) != 0
                   ? write_status::unknown_metric
                   : write_status::not_writable;
    auto it = std::find_if(d.lines.begin(), d.lines.end(),
                           [&](const line_slot& l) { return l.name == std::string_view{m.name}.substr(prefix.size()); });
    if (it == d.lines.end())
        return write_status::unknown_metric;
    if (!it->output || it->held_elsewhere || !d.request)
        return write_status::not_writable;
    if (!std::holds_alternative<bool>(m.val))
        return write_status::bad_value;
    std::error_code ec;
    d.request->set(it->offset, std::get<bool>(m.val), ec);
    if (!ec)
        it->level = d.request->get(it->offset, ec);
    if (ec)
        return write_status::failed;
    confirmed.push_back(impl::line_metric(*it, utc_now_ms()));
    return write_status::done;
}

std::vector<std::string> card_device::held_elsewhere() const {
    std::vector<std::string> out;
    for (const auto& l : impl_->lines)
        if (l.held_elsewhere)
            out.push_back(l.name);
    return out;
}

}  // namespace io::gate
