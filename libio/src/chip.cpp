// SPDX-License-Identifier: MIT
#include <io/chip.hpp>
#include <io/error.hpp>

#include "error.hpp"
#include "line_request_access.hpp"

#include <gpiod.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fcntl.h>
#include <map>
#include <unistd.h>

namespace io {
namespace {

template <typename T, void (*Free)(T*)>
struct deleter {
    void operator()(T* p) const noexcept { Free(p); }
};
using chip_info_ptr = std::unique_ptr<gpiod_chip_info, deleter<gpiod_chip_info, gpiod_chip_info_free>>;
using line_info_ptr = std::unique_ptr<gpiod_line_info, deleter<gpiod_line_info, gpiod_line_info_free>>;
using settings_ptr = std::unique_ptr<gpiod_line_settings, deleter<gpiod_line_settings, gpiod_line_settings_free>>;
using line_config_ptr = std::unique_ptr<gpiod_line_config, deleter<gpiod_line_config, gpiod_line_config_free>>;
using request_config_ptr =
    std::unique_ptr<gpiod_request_config, deleter<gpiod_request_config, gpiod_request_config_free>>;
using request_ptr = std::unique_ptr<gpiod_line_request, deleter<gpiod_line_request, gpiod_line_request_release>>;

}  // namespace

std::optional<std::pair<std::string, unsigned>> split_line_name(std::string_view name) {
    auto digits = name.find_last_not_of("0123456789");
    if (digits == std::string_view::npos || digits + 1 == name.size())
        return std::nullopt;
    unsigned n = 0;
    const auto* first = name.data() + digits + 1;
    if (std::from_chars(first, name.data() + name.size(), n).ec != std::errc{})
        return std::nullopt;
    return std::pair{std::string(name.substr(0, digits + 1)), n};
}

struct chip::impl {
    gpiod_chip* c = nullptr;
    ~impl() {
        if (c != nullptr)
            gpiod_chip_close(c);
    }
    chip_info_ptr info(const std::string& path) const {
        chip_info_ptr i{gpiod_chip_get_info(c)};
        if (!i)
            detail::throw_errno(errno, "read chip info of " + path);
        return i;
    }
};

chip::chip(const std::string& path) : path_{path}, impl_{std::make_unique<impl>()} {
    impl_->c = gpiod_chip_open(path.c_str());
    if (impl_->c == nullptr)
        detail::throw_errno(errno, "open " + path);
}

chip::~chip() = default;
chip::chip(chip&&) noexcept = default;
chip& chip::operator=(chip&&) noexcept = default;

std::string chip::name() const {
    return gpiod_chip_info_get_name(impl_->info(path_).get());
}

std::string chip::label() const {
    return gpiod_chip_info_get_label(impl_->info(path_).get());
}

unsigned chip::num_lines() const {
    return static_cast<unsigned>(gpiod_chip_info_get_num_lines(impl_->info(path_).get()));
}

int chip::fd() const noexcept {
    return gpiod_chip_get_fd(impl_->c);
}

line_info chip::info(unsigned offset) const {
    line_info_ptr li{gpiod_chip_get_line_info(impl_->c, offset)};
    if (!li) {
        if (errno == EINVAL)
            throw invalid_argument("line " + std::to_string(offset) + " of " + path_ + ": the chip has lines 0.." +
                                   std::to_string(num_lines() - 1));
        detail::throw_errno(errno, "read info of line " + std::to_string(offset) + " of " + path_);
    }
    line_info out;
    out.offset = offset;
    const char* n = gpiod_line_info_get_name(li.get());
    const char* c = gpiod_line_info_get_consumer(li.get());
    out.name = n != nullptr ? n : "";
    out.consumer = c != nullptr ? c : "";
    out.used = gpiod_line_info_is_used(li.get());
    out.dir = gpiod_line_info_get_direction(li.get()) == GPIOD_LINE_DIRECTION_OUTPUT ? direction::output
                                                                                     : direction::input;
    switch (gpiod_line_info_get_edge_detection(li.get())) {
    case GPIOD_LINE_EDGE_RISING:
        out.edges = edge::rising;
        break;
    case GPIOD_LINE_EDGE_FALLING:
        out.edges = edge::falling;
        break;
    case GPIOD_LINE_EDGE_BOTH:
        out.edges = edge::both;
        break;
    default:
        out.edges = edge::none;
    }
    out.active_low = gpiod_line_info_is_active_low(li.get());
    return out;
}

std::optional<unsigned> chip::find_line(std::string_view name) const {
    const std::string n{name};
    const int off = gpiod_chip_get_line_offset_from_name(impl_->c, n.c_str());
    if (off < 0)
        return std::nullopt;
    return static_cast<unsigned>(off);
}

std::vector<port> chip::ports() const {
    std::map<std::string, std::vector<std::pair<unsigned, unsigned>>> groups;  // name -> (number, offset)
    std::vector<std::string> order;
    const auto n = num_lines();
    for (unsigned off = 0; off < n; ++off) {
        const auto s = split_line_name(info(off).name);
        if (!s)
            continue;
        auto [it, fresh] = groups.try_emplace(s->first);
        if (fresh)
            order.push_back(s->first);
        it->second.emplace_back(s->second, off);
    }
    std::vector<port> out;
    for (const auto& name : order) {
        auto lines = groups[name];
        std::sort(lines.begin(), lines.end());
        port p{name, {}};
        for (auto [num, off] : lines)
            p.lines.push_back(off);
        out.push_back(std::move(p));
    }
    return out;
}

port chip::find_port(std::string_view name) const {
    std::string known;
    for (auto& p : ports()) {
        if (p.name == name)
            return p;
        known += (known.empty() ? "" : ", ") + p.name;
    }
    throw invalid_argument("no port '" + std::string(name) + "' on " + path_ + " (" + label() +
                           "); ports: " + (known.empty() ? "none" : known));
}

request_builder& request_builder::consumer(std::string_view name) {
    consumer_ = name;
    return *this;
}

request_builder& request_builder::add(unsigned offset, const line_config& config) {
    lines_.push_back({offset, config});
    return *this;
}

request_builder& request_builder::add(std::string_view name, const line_config& config) {
    const auto off = chip_->find_line(name);
    if (!off) {
        std::string names;
        const auto n = chip_->num_lines();
        for (unsigned i = 0; i < n && names.size() < 400; ++i) {
            auto ln = chip_->info(i).name;
            if (!ln.empty())
                names += (names.empty() ? "" : " ") + ln;
        }
        throw invalid_argument("no line '" + std::string(name) + "' on " + chip_->path() +
                               "; lines: " + (names.empty() ? "unnamed, use offsets 0.." + std::to_string(n - 1) : names));
    }
    return add(*off, config);
}

request_builder& request_builder::add(const port& p, const line_config& config) {
    for (auto off : p.lines)
        add(off, config);
    return *this;
}

request_builder& request_builder::event_buffer_size(std::size_t events) {
    event_buffer_size_ = events;
    return *this;
}

namespace {

void apply(gpiod_line_settings* s, const line_config& c) {
    gpiod_line_settings_set_direction(
        s, c.dir == direction::output ? GPIOD_LINE_DIRECTION_OUTPUT : GPIOD_LINE_DIRECTION_INPUT);
    gpiod_line_edge e = GPIOD_LINE_EDGE_NONE;
    if (c.edges == edge::rising)
        e = GPIOD_LINE_EDGE_RISING;
    else if (c.edges == edge::falling)
        e = GPIOD_LINE_EDGE_FALLING;
    else if (c.edges == edge::both)
        e = GPIOD_LINE_EDGE_BOTH;
    gpiod_line_settings_set_edge_detection(s, e);
    gpiod_line_bias b = GPIOD_LINE_BIAS_AS_IS;
    if (c.pull == bias::disabled)
        b = GPIOD_LINE_BIAS_DISABLED;
    else if (c.pull == bias::pull_up)
        b = GPIOD_LINE_BIAS_PULL_UP;
    else if (c.pull == bias::pull_down)
        b = GPIOD_LINE_BIAS_PULL_DOWN;
    gpiod_line_settings_set_bias(s, b);
    if (c.dir == direction::output) {
        gpiod_line_drive d = GPIOD_LINE_DRIVE_PUSH_PULL;
        if (c.output_drive == drive::open_drain)
            d = GPIOD_LINE_DRIVE_OPEN_DRAIN;
        else if (c.output_drive == drive::open_source)
            d = GPIOD_LINE_DRIVE_OPEN_SOURCE;
        gpiod_line_settings_set_drive(s, d);
        gpiod_line_settings_set_output_value(s, c.initial ? GPIOD_LINE_VALUE_ACTIVE : GPIOD_LINE_VALUE_INACTIVE);
    }
    gpiod_line_settings_set_active_low(s, c.active_low);
    gpiod_line_settings_set_debounce_period_us(s, static_cast<unsigned long>(c.debounce.count()));
    gpiod_line_settings_set_event_clock(s, GPIOD_LINE_CLOCK_MONOTONIC);
}

}  // namespace

line_request request_builder::make() {
    const auto& path = chip_->path();
    if (lines_.empty())
        throw invalid_argument("request on " + path + ": no lines added");
    if (lines_.size() > 64)
        throw invalid_argument("request on " + path + ": " + std::to_string(lines_.size()) +
                               " lines; one request holds at most 64");
    const auto n = chip_->num_lines();
    std::string what;
    for (std::size_t i = 0; i < lines_.size(); ++i) {
        const auto& l = lines_[i];
        if (l.offset >= n)
            throw invalid_argument("request on " + path + ": line " + std::to_string(l.offset) +
                                   " does not exist; the chip has lines 0.." + std::to_string(n - 1));
        for (std::size_t j = 0; j < i; ++j)
            if (lines_[j].offset == l.offset)
                throw invalid_argument("request on " + path + ": line " + std::to_string(l.offset) +
                                       " added twice");
        if (l.config.debounce.count() < 0)
            throw invalid_argument("request on " + path + ": negative debounce period");
        if (l.config.dir == direction::output && l.config.edges != edge::none)
            throw invalid_argument("request on " + path + ": line " + std::to_string(l.offset) +
                                   " is an output; edge events need an input");
        what += (what.empty() ? "" : ",") + std::to_string(l.offset);
    }
    const std::string context = "request lines " + what + " of " + path + " for " + consumer_;

    line_config_ptr lc{gpiod_line_config_new()};
    request_config_ptr rc{gpiod_request_config_new()};
    if (!lc || !rc)
        throw std::bad_alloc();
    for (const auto& l : lines_) {
        settings_ptr s{gpiod_line_settings_new()};
        if (!s)
            throw std::bad_alloc();
        apply(s.get(), l.config);
        if (gpiod_line_config_add_line_settings(lc.get(), &l.offset, 1, s.get()) != 0)
            detail::throw_errno(errno, context);
    }
    gpiod_request_config_set_consumer(rc.get(), consumer_.c_str());
    if (event_buffer_size_ != 0)
        gpiod_request_config_set_event_buffer_size(rc.get(), event_buffer_size_);

    request_ptr req{gpiod_chip_request_lines(chip_->impl_->c, rc.get(), lc.get())};
    if (!req) {
        const int err = errno;
        if (err == EBUSY) {
            std::string holders;
            for (const auto& l : lines_) {
                const auto li = chip_->info(l.offset);
                if (li.used)
                    holders += " line " + std::to_string(l.offset) + " (" + li.name + ") is held by '" +
                               li.consumer + "';";
            }
            detail::throw_errno(err, context + ":" + holders);
        }
        if (err == EINVAL || err == EPERM || err == EIO)
            detail::throw_errno(err, context + " (the card refuses this configuration: check the lines' fixed "
                                               "directions and what the card supports)");
        detail::throw_errno(err, context);
    }
    std::vector<unsigned> offsets(gpiod_line_request_get_num_requested_lines(req.get()));
    gpiod_line_request_get_requested_offsets(req.get(), offsets.data(), offsets.size());
    // The request lives on in the kernel as long as a descriptor refers to it:
    // keep a duplicate and drop libgpiod's object, so the hot paths are plain
    // system calls through libio's seam.
    const int fd = ::fcntl(gpiod_line_request_get_fd(req.get()), F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        detail::throw_errno(errno, context);
    line_request r{fd, path, std::move(offsets)};
    if (std::any_of(lines_.begin(), lines_.end(), [](const auto& l) { return l.config.edges != edge::none; }))
        detail::line_request_access::open_card_lost(r);
    return r;
}

}  // namespace io
