// SPDX-License-Identifier: MIT
#include <io/card_monitor.hpp>

#include "card_scan.hpp"
#include "error.hpp"
#include "event_loop_access.hpp"
#include "udev.hpp"

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <map>

#include <sys/stat.h>

namespace io {

namespace {

/// What the monitor knows of a card it listed: which instance it is (a
/// card deleted and made again at the same place is another one) and when
/// it was first seen, in the kernel's uevent numbering.
struct instance {
    std::string syspath;
    std::string key;
    unsigned long long seen_at = 0;  // uevent_seqnum read after the scan that first listed it
};

}  // namespace

struct card_monitor::impl {
    detail::udev_owner<udev> u = detail::make_udev();
    detail::udev_owner<udev_monitor> mon;
    std::vector<card_info> cards;
    std::vector<instance> instances;  // one per card, same order
    unsigned resyncs = 0;
    // Instances that a remove event showed going while sysfs still lists
    // them. Linux removes a card's devices one by one (6.12: the GPIO sysfs
    // entry, then the gpiochip, then the class device), and the kernel
    // sends each event before it unlinks the directory. Forgotten when
    // sysfs stops listing the instance, or an add event comes below it.
    std::map<std::string, instance> dead;
};

namespace {

/// The card's identity across scans: where and what it is, and the inode
/// of its sysfs directory, which a new device at the same path does not
/// share (sysfs numbers its inodes cyclically). Empty when the directory
/// is gone already: the scan saw the card as it left.
std::string instance_key(const card_info& c) {
    struct stat st {};
    if (c.syspath.empty() || ::stat(c.syspath.c_str(), &st) != 0)
        return {};
    return c.location + "/" + c.name + "/" + c.syspath + "#" + std::to_string(st.st_ino);
}

/// The number of the kernel's last uevent, or 0 where sysfs does not say.
unsigned long long uevent_seqnum() {
    std::ifstream f{"/sys/kernel/uevent_seqnum"};
    unsigned long long n = 0;
    return f >> n ? n : 0;
}

/// Is path the device at root or below it?
bool under(const std::string& root, const std::string& path) {
    return !root.empty() && path.compare(0, root.size(), root) == 0 &&
           (path.size() == root.size() || path[root.size()] == '/');
}

/// Did an event numbered seqnum happen to the instance, rather than to an
/// earlier device at the same place? Every event of an earlier one came
/// before the scan that listed this one (they cannot coexist), so any event
/// numbered after that scan is this instance's. Earlier events are left to
/// the next scan. Without numbers, the event counts.
bool after(unsigned long long seqnum, const instance& i) {
    return seqnum == 0 || i.seen_at == 0 || seqnum > i.seen_at;
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
    const auto seen_at = uevent_seqnum();
    std::vector<card_info> listed;
    for (auto& c : impl_->cards)
        if (auto key = instance_key(c); !key.empty()) {
            impl_->instances.push_back({c.syspath, std::move(key), seen_at});
            listed.push_back(std::move(c));
        }
    impl_->cards = std::move(listed);
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
        const auto seqnum = udev_device_get_seqnum(d.get());
        if (action != nullptr && std::string_view(action) == "remove") {
            for (const auto& i : impl_->instances)
                if (under(i.syspath, syspath) && after(seqnum, i))
                    impl_->dead.insert_or_assign(i.key, i);
        } else if (action != nullptr && std::string_view(action) == "add") {
            std::erase_if(impl_->dead,
                          [&](const auto& entry) { return under(entry.second.syspath, syspath) && after(seqnum, entry.second); });
        }
    }
    std::vector<card_event> events;
    if (!changed && !overflow)
        return events;
    if (overflow)
        ++impl_->resyncs;
    auto now = detail::scan_cards(impl_->u.get());
    const auto seen_at = uevent_seqnum();
    std::vector<std::string> keys;
    for (const auto& c : now)
        keys.push_back(instance_key(c));
    // What remove events showed going, before the ones sysfs no longer
    // lists are forgotten: such a card is removed, not passed over.
    std::vector<std::string> went;
    for (const auto& entry : impl_->dead)
        went.push_back(entry.first);
    std::erase_if(impl_->dead, [&](const auto& entry) {
        return std::find(keys.begin(), keys.end(), entry.first) == keys.end();
    });
    std::vector<instance> instances;
    std::vector<card_info> cards;
    for (std::size_t n = 0; n < now.size(); ++n) {
        if (keys[n].empty() || impl_->dead.count(keys[n]) != 0)
            continue;
        const auto old = std::find_if(impl_->instances.begin(), impl_->instances.end(),
                                      [&](const instance& i) { return i.key == keys[n]; });
        if (old == impl_->instances.end())
            events.push_back({card_event::kind::added, now[n]});
        instances.push_back(old != impl_->instances.end() ? *old : instance{now[n].syspath, keys[n], seen_at});
        cards.push_back(std::move(now[n]));
    }
    std::vector<card_event> removed;
    for (std::size_t n = 0; n < impl_->cards.size(); ++n) {
        const auto& was = impl_->instances[n];
        if (std::any_of(instances.begin(), instances.end(), [&](const instance& i) { return i.key == was.key; }))
            continue;
        // A card goes by its remove events (dead) or from sysfs. One that
        // the scan passed over while its class device is still the same
        // directory (udev re-processing its gpiochip, whose record then
        // reads as not initialized) is still here: it stays listed.
        if (std::find(went.begin(), went.end(), was.key) == went.end() && instance_key(impl_->cards[n]) == was.key) {
            instances.push_back(was);
            cards.push_back(impl_->cards[n]);
            continue;
        }
        removed.push_back({card_event::kind::removed, impl_->cards[n]});
    }
    events.insert(events.begin(), removed.begin(), removed.end());
    impl_->cards = std::move(cards);
    impl_->instances = std::move(instances);
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
