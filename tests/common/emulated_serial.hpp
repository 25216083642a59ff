// SPDX-License-Identifier: MIT
// The test VM's emulated serial hardware as the guest's sysfs shows it:
// QEMU's pci-serial-4x (PCI 1b36:0004, cable ends uart0..uart3 in the order
// of the UARTs' I/O addresses, which is the order of their chardevs) and its
// usb-serial FTDI FT232 (USB 0403:6001, cable end ftdi0).
#pragma once

#include "sim_card.hpp"

#include <algorithm>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace io::test {

/// The nearest ancestor of dev (a sysfs device) that has the attribute.
inline std::filesystem::path ancestor_with(std::filesystem::path dev, const char* attribute) {
    for (; dev.has_relative_path() && dev != "/sys/devices"; dev = dev.parent_path())
        if (std::filesystem::exists(dev / attribute))
            return dev;
    return {};
}

/// The name of the driver bound to a sysfs device, "" when none.
inline std::string driver_of(const std::filesystem::path& dev) {
    return std::filesystem::exists(dev / "driver") ? std::filesystem::canonical(dev / "driver").filename().string()
                                                   : "";
}

struct emulated_port {
    std::string cable;          ///< the cable agent's name for the far end
    std::string tty;            ///< "/dev/ttyS4"
    std::filesystem::path sys;  ///< "/sys/class/tty/ttyS4"
};

/// The UARTs of QEMU's PCI serial card, in I/O address order.
inline std::vector<emulated_port> pci_uarts() {
    namespace fs = std::filesystem;
    std::vector<std::pair<unsigned long, emulated_port>> found;
    for (const auto& e : fs::directory_iterator{"/sys/class/tty"}) {
        const auto name = e.path().filename().string();
        if (name.rfind("ttyS", 0) != 0 || !fs::exists(e.path() / "device"))
            continue;
        const auto pci = ancestor_with(fs::canonical(e.path()), "vendor");
        if (pci.empty() || read_attr(pci / "vendor") != "0x1b36" || read_attr(pci / "device") != "0x0004")
            continue;
        found.push_back({std::stoul(read_attr(e.path() / "port"), nullptr, 16), {"", "/dev/" + name, e.path()}});
    }
    std::sort(found.begin(), found.end(), [](auto& a, auto& b) { return a.first < b.first; });
    std::vector<emulated_port> ports;
    for (auto& [io_base, p] : found) {
        p.cable = "uart" + std::to_string(ports.size());
        ports.push_back(p);
    }
    return ports;
}

/// The ttyUSB ports of FTDI FT232 devices.
inline std::vector<emulated_port> ftdi_ports() {
    namespace fs = std::filesystem;
    std::vector<emulated_port> ports;
    for (const auto& e : fs::directory_iterator{"/sys/class/tty"}) {
        const auto name = e.path().filename().string();
        if (name.rfind("ttyUSB", 0) != 0)
            continue;
        const auto usb = ancestor_with(fs::canonical(e.path()), "idVendor");
        if (!usb.empty() && read_attr(usb / "idVendor") == "0403" && read_attr(usb / "idProduct") == "6001")
            ports.push_back({"ftdi" + std::to_string(ports.size()), "/dev/" + name, e.path()});
    }
    return ports;
}

/// The guest tty of a cable end ("uart2", "ftdi0"), "" when absent.
inline std::string tty_of(const std::string& cable) {
    auto ports = pci_uarts();
    for (auto& p : ftdi_ports())
        ports.push_back(p);
    for (const auto& p : ports)
        if (p.cable == cable)
            return p.tty;
    return {};
}

}  // namespace io::test
