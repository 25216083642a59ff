// SPDX-License-Identifier: MIT
#include <io/card.hpp>
#include <io/error.hpp>

#include "card_scan.hpp"
#include "error.hpp"
#include "udev.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <map>
#include <optional>
#include <tuple>
#include <unistd.h>

namespace io {
namespace detail {

udev_owner<udev> make_udev() {
    udev_owner<udev> u{udev_new()};
    if (!u)
        throw_errno(errno != 0 ? errno : ENOMEM, "udev: create context");
    return u;
}

}  // namespace detail

namespace {

using detail::attr;
using detail::prop;
using detail::udev_owner;

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

/// The vendor the hwdb knows for the card's PCI/USB device, without rules.
std::string hwdb_vendor(udev* u, udev_device* bus_dev) {
    if (bus_dev == nullptr)
        return "";
    const char* modalias = udev_device_get_sysattr_value(bus_dev, "modalias");
    if (modalias == nullptr)
        return "";
    udev_owner<udev_hwdb> hw{udev_hwdb_new(u)};
    if (!hw)
        return "";
    udev_list_entry* e = udev_hwdb_get_properties_list_entry(hw.get(), modalias, 0);
    for (; e != nullptr; e = udev_list_entry_get_next(e))
        if (std::string_view(udev_list_entry_get_name(e)) == "ID_IOCARD_VENDOR")
            return udev_list_entry_get_value(e);
    return "";
}

/// Whether udevd runs here (its control socket exists): without it no
/// device is ever marked as processed.
bool udev_running() {
    return ::access("/run/udev/control", F_OK) == 0;
}

/// The gpiochip's udev device (for the properties our rules add).
udev_owner<udev_device> gpiochip_device(udev* u, const std::string& chip) {
    return udev_owner<udev_device>{udev_device_new_from_subsystem_sysname(u, "gpio", chip.c_str())};
}

void add_iocard_cards(udev* u, std::map<std::string, card_info>& cards) {
    udev_owner<udev_enumerate> en{udev_enumerate_new(u)};
    udev_enumerate_add_match_subsystem(en.get(), "iocard");
    udev_enumerate_scan_devices(en.get());
    const bool udevd = udev_running();
    udev_list_entry* e;
    udev_list_entry_foreach(e, udev_enumerate_get_list_entry(en.get())) {
        udev_owner<udev_device> d{udev_device_new_from_syspath(u, udev_list_entry_get_name(e))};
        if (!d)
            continue;  // gone meanwhile
        card_info c;
        c.name = udev_device_get_sysname(d.get());
        c.model = trim(attr(d.get(), "model"));
        if (c.model.empty())
            continue;  // half created or half removed
        c.location = trim(attr(d.get(), "location"));
        if (c.location.empty())
            continue;  // likewise: a card is named by its location
        c.cos = trim(attr(d.get(), "cos"));
        c.driver = "iocard";
        c.syspath = udev_device_get_syspath(d.get());
        try {
            c.ports = parse_port_layout(trim(attr(d.get(), "ports")));
        } catch (const invalid_argument&) {
            c.ports.clear();
        }
        for (const auto& p : c.ports)
            c.num_lines += p.width;
        const auto chip = trim(attr(d.get(), "gpiochip"));
        if (chip.empty())
            continue;  // its gpiochip is still being added; its own event follows
        c.gpiochip = "/dev/" + chip;
        auto g = gpiochip_device(u, chip);
        if (!g)
            continue;  // the card is going: its gpiochip is gone already
        // Where udev runs, a chip it has not processed yet has none of the
        // properties our rules give (the label): its own event follows. A
        // scan made for another card's events (one just removed) saw such
        // a card with no label, and iogate published it under no name.
        if (udevd && udev_device_get_is_initialized(g.get()) == 0)
            continue;
        // udev's record of the chip may still be the one of the card that
        // had this gpiochip number before (udev has not processed the new
        // chip yet): its own event follows.
        if (const auto owner = prop(g.get(), "IOCARD_CARD"); !owner.empty() && owner != c.name)
            continue;
        c.label = prop(g.get(), "IOCARD_LABEL");
        c.vendor = prop(g.get(), "IOCARD_VENDOR");
        if (c.vendor.empty())
            c.vendor = c.location.rfind("sim", 0) == 0 ? "virtual"
                                                       : hwdb_vendor(u, udev_device_get_parent(d.get()));
        cards[c.location + "/" + c.name] = std::move(c);
    }
}

void add_mainline_cards(udev* u, std::map<std::string, card_info>& cards) {
    udev_owner<udev_enumerate> en{udev_enumerate_new(u)};
    udev_enumerate_add_match_subsystem(en.get(), "gpio");
    udev_enumerate_add_match_property(en.get(), "IOCARD_CARD", "*");
    udev_enumerate_scan_devices(en.get());
    udev_list_entry* e;
    udev_list_entry_foreach(e, udev_enumerate_get_list_entry(en.get())) {
        udev_owner<udev_device> d{udev_device_new_from_syspath(u, udev_list_entry_get_name(e))};
        if (!d || prop(d.get(), "IOCARD_DRIVER") == "iocard")
            continue;  // iocard.ko's cards come from their class devices
        card_info c;
        c.name = prop(d.get(), "IOCARD_CARD");
        c.model = prop(d.get(), "IOCARD_MODEL");
        c.vendor = prop(d.get(), "IOCARD_VENDOR");
        c.location = prop(d.get(), "IOCARD_LOCATION");
        c.label = prop(d.get(), "IOCARD_LABEL");
        c.driver = prop(d.get(), "IOCARD_DRIVER");
        c.gpiochip = std::string("/dev/") + udev_device_get_sysname(d.get());
        try {
            c.ports = parse_port_layout(prop(d.get(), "IOCARD_PORTS"));
        } catch (const invalid_argument&) {
            c.ports.clear();
        }
        for (const auto& p : c.ports)
            c.num_lines += p.width;
        udev_device* parent = udev_device_get_parent(d.get());
        c.syspath = parent != nullptr ? udev_device_get_syspath(parent) : udev_device_get_syspath(d.get());
        cards[c.location + "/" + c.name] = std::move(c);
    }
}

/// IOCARD_SERIAL_INDEX, the port's position on its card, as udev's
/// iocard-serial-index computed it (the one place the order is worked out).
std::optional<unsigned> serial_index(udev_device* d) {
    const auto text = prop(d, "IOCARD_SERIAL_INDEX");
    unsigned v = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, v);
    if (text.empty() || ec != std::errc{} || ptr != end)
        return std::nullopt;
    return v;
}

void add_serial_ports(udev* u, std::map<std::string, card_info>& cards) {
    struct tty {
        // Ports with a udev index first, by index; a port without one (the
        // rule's helper missing or failed) after them, by device path, and
        // numbered on from the highest index.
        std::tuple<bool, unsigned, std::string> order;
        std::string path;
        std::string modes;
    };
    std::map<std::string, std::vector<tty>> by_location;
    std::map<std::string, card_info> serial_cards;
    udev_owner<udev_enumerate> en{udev_enumerate_new(u)};
    udev_enumerate_add_match_subsystem(en.get(), "tty");
    udev_enumerate_add_match_property(en.get(), "IOCARD_MODEL", "*");
    udev_enumerate_scan_devices(en.get());
    udev_list_entry* e;
    udev_list_entry_foreach(e, udev_enumerate_get_list_entry(en.get())) {
        udev_owner<udev_device> d{udev_device_new_from_syspath(u, udev_list_entry_get_name(e))};
        if (!d)
            continue;
        const auto location = prop(d.get(), "IOCARD_LOCATION");
        if (location.empty())
            continue;
        auto serial = prop(d.get(), "IOCARD_SERIAL");
        const auto colon = serial.find(':');
        const auto modes = colon == std::string::npos ? std::string{} : serial.substr(colon + 1);
        const char* devnode = udev_device_get_devnode(d.get());
        const auto index = serial_index(d.get());
        by_location[location].push_back(
            {{!index.has_value(), index.value_or(0), udev_device_get_devpath(d.get())},
             devnode != nullptr ? devnode : std::string("/dev/") + udev_device_get_sysname(d.get()),
             modes});
        if (!serial_cards.count(location)) {
            card_info c;
            c.model = prop(d.get(), "IOCARD_MODEL");
            c.vendor = prop(d.get(), "IOCARD_VENDOR");
            c.driver = prop(d.get(), "IOCARD_DRIVER");
            c.location = location;
            c.label = prop(d.get(), "IOCARD_LABEL");
            // The card is the PCI function or USB device the ports are on.
            udev_device* bus = udev_device_get_parent_with_subsystem_devtype(d.get(), "pci", nullptr);
            if (bus == nullptr)
                bus = udev_device_get_parent_with_subsystem_devtype(d.get(), "usb", "usb_device");
            c.syspath = bus != nullptr ? udev_device_get_syspath(bus) : "";
            serial_cards[location] = std::move(c);
        }
    }
    for (auto& [location, ttys] : by_location) {
        std::sort(ttys.begin(), ttys.end(), [](const tty& a, const tty& b) { return a.order < b.order; });
        // A DIO card at the same location owns the ports; otherwise they are a card of their own.
        card_info* owner = nullptr;
        for (auto& [key, c] : cards)
            if (c.location == location)
                owner = &c;
        if (owner == nullptr) {
            auto& c = serial_cards[location];
            c.name = ttys.front().path.substr(ttys.front().path.rfind('/') + 1);
            owner = &(cards[location + "/" + c.name] = c);
        }
        unsigned next = 0;
        for (const auto& t : ttys) {
            const unsigned i = std::get<0>(t.order) ? next : std::get<1>(t.order);
            next = std::max(next, i + 1);
            owner->serial_ports.push_back({t.path, i, t.modes});
        }
    }
}

}  // namespace

namespace detail {

std::vector<card_info> scan_cards(udev* u) {
    std::map<std::string, card_info> found;
    add_iocard_cards(u, found);
    add_mainline_cards(u, found);
    add_serial_ports(u, found);
    std::vector<card_info> out;
    for (auto& [key, c] : found) {
        if (c.label.empty())
            c.label = c.name;
        out.push_back(std::move(c));
    }
    std::sort(out.begin(), out.end(), [](const card_info& a, const card_info& b) {
        return std::tie(a.model, a.location, a.name) < std::tie(b.model, b.location, b.name);
    });
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i].index = i > 0 && out[i - 1].model == out[i].model ? out[i - 1].index + 1 : 0;
    return out;
}

}  // namespace detail

std::vector<card_info> enumerate() {
    auto u = detail::make_udev();
    return detail::scan_cards(u.get());
}

card_info find_card(std::string_view key, const std::vector<card_info>& cards) {
    using pred = bool (*)(const card_info&, std::string_view);
    static const pred tests[] = {
        [](const card_info& c, std::string_view k) { return c.label == k; },
        [](const card_info& c, std::string_view k) { return c.location == k; },
        [](const card_info& c, std::string_view k) { return c.name == k; },
        [](const card_info& c, std::string_view k) { return !c.gpiochip.empty() && c.gpiochip == k; },
        [](const card_info& c, std::string_view k) {
            return std::any_of(c.serial_ports.begin(), c.serial_ports.end(),
                               [&](const serial_port_info& p) { return p.path == k; });
        },
        [](const card_info& c, std::string_view k) { return c.model + "#" + std::to_string(c.index) == k; },
        [](const card_info& c, std::string_view k) { return c.model == k; },
    };
    for (auto* test : tests) {
        std::vector<const card_info*> hits;
        for (const auto& c : cards)
            if (test(c, key))
                hits.push_back(&c);
        if (hits.size() == 1)
            return *hits.front();
        if (hits.size() > 1) {
            std::string which;
            for (auto* c : hits)
                which += " " + c->model + "#" + std::to_string(c->index) + " (" + c->location + ")";
            throw ambiguous_card("card '" + std::string(key) + "' is ambiguous:" + which +
                                 "; name one by label, location or MODEL#INDEX");
        }
    }
    std::string present;
    for (const auto& c : cards)
        present += (present.empty() ? "" : ", ") + c.label + " (" + c.model + "#" + std::to_string(c.index) +
                   " at " + c.location + ")";
    throw invalid_argument("no card '" + std::string(key) + "'; cards present: " +
                           (present.empty() ? "none" : present));
}

card_info find_card(std::string_view key) {
    return find_card(key, enumerate());
}

const port_layout* port_of(const card_info& card, unsigned offset) noexcept {
    unsigned first = 0;
    for (const auto& p : card.ports) {
        if (offset < first + p.width)
            return &p;
        first += p.width;
    }
    return nullptr;
}

std::vector<port_layout> parse_port_layout(std::string_view text) {
    std::vector<port_layout> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        pos = text.find_first_not_of(" \t\n", pos);
        if (pos == std::string_view::npos)
            break;
        auto end = text.find_first_of(" \t\n", pos);
        if (end == std::string_view::npos)
            end = text.size();
        const auto item = text.substr(pos, end - pos);
        pos = end;
        const auto c1 = item.find(':');
        const auto c2 = c1 == std::string_view::npos ? c1 : item.find(':', c1 + 1);
        unsigned width = 0;
        if (c2 == std::string_view::npos || c1 == 0 ||
            std::from_chars(item.data() + c1 + 1, item.data() + c2, width).ec != std::errc{} || width == 0 ||
            width > 64)
            throw invalid_argument("port layout item '" + std::string(item) +
                                   "': expected NAME:WIDTH:in|out|io with WIDTH 1..64");
        const auto dir = item.substr(c2 + 1);
        port_layout p{std::string(item.substr(0, c1)), width, dir == "in" || dir == "io", dir == "out" || dir == "io"};
        if (!p.input && !p.output)
            throw invalid_argument("port layout item '" + std::string(item) + "': direction '" + std::string(dir) +
                                   "' is not in, out or io");
        out.push_back(std::move(p));
    }
    return out;
}

}  // namespace io
