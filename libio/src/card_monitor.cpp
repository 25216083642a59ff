// SPDX-License-Identifier: MIT
#include <io/card_monitor.hpp>

#include "card_scan.hpp"
#include "error.hpp"
#include "event_loop_access.hpp"
#include "udev.hpp"

#include <algorithm>
#include <cerrno>
#include <set>

namespace io {

struct card_monitor::impl {
    detail::udev_owner<udev> u = detail::make_udev();
    detail::udev_owner<udev_monitor> mon;
    std::vector<card_info> cards;
    unsigned resyncs = 0;
    // Devices udev said were removed, by syspath and by device node, until
    // sysfs forgets them too or they are added again. udev may announce a
    // removal while sysfs still shows the device (the kernel sends the event
    // before it unlinks the directory); a scan in between must not bring
    // the card back.
    std::set<std::string> dead_syspaths;
    std::set<std::string> dead_nodes;
};

namespace {

std::string key_of(const card_info& c) {
    return c.location + "/" + c.name + "/" + c.syspath;
}

/// Does the device at syspath, with device node `node`, belong to the card
/// (its class device, chip, a tty, or below its bus device)?
bool belongs(const card_info& c, const std::string& syspath, const std::string& node) {
    if (!c.syspath.empty() && syspath.rfind(c.syspath, 0) == 0)
        return true;
    if (node == c.gpiochip)
        return true;
    return std::any_of(c.serial_ports.begin(), c.serial_ports.end(),
                       [&](const serial_port_info& p) { return p.path == node; });
}

}  // namespace

card_monitor::card_monitor() : impl_{std::make_unique<impl>()} {
    impl_->mon.reset(udev_monitor_new_from_netlink(impl_->u.get(), "udev"));
    if (!impl_->mon)
        detail::throw_errno(errno != 0 ? errno : ENOMEM, "card monitor: open the udev monitor");
    for (const char* subsystem : {"iocard", "gpio", "tty"})
        if (udev_monitor_filter_add_match_subsystem_devtype(impl_->mon.get(), subsystem, nullptr) < 0)
            detail::throw_errno(errno, "card monitor: filter udev events");
    if (udev_monitor_enable_receiving(impl_->mon.get()) < 0)
        detail::throw_errno(errno, "card monitor: listen to udev");
    // Listening first, then the inventory: a card that arrives in between
    // is both in the inventory and announced; read_events() sorts it out.
    impl_->cards = detail::scan_cards(impl_->u.get());
}

card_monitor::~card_monitor() = default;
card_monitor::card_monitor(card_monitor&&) noexcept = default;
card_monitor& card_monitor::operator=(card_monitor&&) noexcept = default;

int card_monitor::fd() const noexcept {
    return udev_monitor_get_fd(impl_->mon.get());
}

const std::vector<card_info>& card_monitor::cards() const noexcept {
    return impl_->cards;
}

unsigned card_monitor::resyncs() const noexcept {
    return impl_->resyncs;
}

void card_monitor::set_receive_buffer_size(int bytes) {
    if (udev_monitor_set_receive_buffer_size(impl_->mon.get(), bytes) < 0)
        detail::throw_errno(errno, "card monitor: set the receive buffer to " + std::to_string(bytes) + " bytes");
}

std::vector<card_event> card_monitor::read_events(std::error_code& ec) {
    ec.clear();
    bool changed = false;
    bool overflow = false;
    std::set<std::string> gone;  // cards a remove event touched
    for (;;) {
        errno = 0;
        detail::udev_owner<udev_device> d{udev_monitor_receive_device(impl_->mon.get())};
        if (!d) {
            if (errno == ENOBUFS) {  // the kernel dropped events: take the inventory afresh
                overflow = true;
                continue;
            }
            if (errno == EINTR)
                continue;
            if (errno != 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                ec = detail::errno_code(errno);
            break;
        }
        changed = true;
        const char* action = udev_device_get_action(d.get());
        const std::string syspath = udev_device_get_syspath(d.get());
        const std::string node = "/dev/" + std::string(udev_device_get_sysname(d.get()));
        if (action != nullptr && std::string_view(action) == "remove") {
            for (const auto& c : impl_->cards)
                if (belongs(c, syspath, node))
                    gone.insert(key_of(c));
            impl_->dead_syspaths.insert(syspath);
            impl_->dead_nodes.insert(node);
        } else if (action != nullptr && std::string_view(action) == "add") {
            impl_->dead_syspaths.erase(syspath);
            impl_->dead_nodes.erase(node);
        }
    }
    std::vector<card_event> events;
    if (!changed && !overflow)
        return events;
    if (overflow)
        ++impl_->resyncs;
    auto now = detail::scan_cards(impl_->u.get());
    // What sysfs no longer shows is not dead-but-visible any more.
    std::set<std::string> seen_syspaths, seen_nodes;
    for (const auto& c : now) {
        seen_syspaths.insert(c.syspath);
        seen_nodes.insert(c.gpiochip);
        for (const auto& p : c.serial_ports)
            seen_nodes.insert(p.path);
    }
    std::erase_if(impl_->dead_syspaths, [&](const std::string& p) { return !seen_syspaths.count(p); });
    std::erase_if(impl_->dead_nodes, [&](const std::string& n) { return !seen_nodes.count(n); });
    std::erase_if(now, [&](const card_info& c) {
        return impl_->dead_syspaths.count(c.syspath) != 0 || impl_->dead_nodes.count(c.gpiochip) != 0 ||
               std::any_of(c.serial_ports.begin(), c.serial_ports.end(),
                           [&](const serial_port_info& p) { return impl_->dead_nodes.count(p.path) != 0; });
    });
    std::set<std::string> now_keys;
    for (const auto& c : now)
        now_keys.insert(key_of(c));
    std::set<std::string> old_keys;
    for (const auto& c : impl_->cards) {
        old_keys.insert(key_of(c));
        if (!now_keys.count(key_of(c)) || gone.count(key_of(c)))
            events.push_back({card_event::kind::removed, c});
    }
    for (const auto& c : now)
        if (!old_keys.count(key_of(c)) || gone.count(key_of(c)))
            events.push_back({card_event::kind::added, c});
    impl_->cards = std::move(now);
    return events;
}

std::vector<card_event> card_monitor::read_events() {
    std::error_code ec;
    auto events = read_events(ec);
    if (ec)
        detail::throw_errno(ec.value(), "card monitor: read udev events");
    return events;
}

registration on_card_events(event_loop& loop, card_monitor& monitor,
                            std::function<void(std::span<const card_event>, std::error_code)> cb) {
    if (!cb)
        throw invalid_argument("on_card_events: the callback is empty");
    return loop.watch(monitor.fd(), ready::in, [&loop, &monitor, cb = std::move(cb)](readiness) {
        std::error_code ec;
        const auto changes = monitor.read_events(ec);
        if (!changes.empty()) {
            cb(changes, {});
            if (!detail::event_loop_access::keep_calling(loop))
                return;  // a lasting error comes again with the next wake-up
        }
        if (ec)
            cb({}, ec);
    });
}

}  // namespace io
