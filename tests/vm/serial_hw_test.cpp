// SPDX-License-Identifier: MIT
// The emulated serial hardware of the test VM: QEMU's pci-serial-4x (four
// 16550A UARTs on one PCI function, driven by 8250_pci) and usb-serial (an
// FTDI FT232 on qemu-xhci, driven by ftdi_sio). Each port's far end is a host
// socket held by the cable agent; bytes must cross intact both ways.
#include "cable.hpp"
#include "emulated_serial.hpp"
#include "vm_test.hpp"

#include <io/io.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <poll.h>
#include <string>
#include <termios.h>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

using io::test::ancestor_with;
using io::test::driver_of;
using io::test::ftdi_ports;
using io::test::pci_uarts;

std::string attr(const fs::path& p) {
    return io::test::read_attr(p);
}

/// A tty in raw 8N1 at 115200 baud, non-blocking; closed at scope end.
class raw_tty final {
public:
    explicit raw_tty(const std::string& path) : fd_{::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)} {
        if (fd_ < 0)
            throw std::system_error(errno, std::system_category(), "open " + path);
        termios t{};
        if (::tcgetattr(fd_, &t) != 0)
            throw std::system_error(errno, std::system_category(), "tcgetattr " + path);
        ::cfmakeraw(&t);
        t.c_cflag |= CLOCAL | CREAD;
        t.c_cflag &= ~static_cast<tcflag_t>(CRTSCTS);
        ::cfsetspeed(&t, B115200);
        t.c_cc[VMIN] = 0;
        t.c_cc[VTIME] = 0;
        if (::tcsetattr(fd_, TCSANOW, &t) != 0)
            throw std::system_error(errno, std::system_category(), "tcsetattr " + path);
        ::tcflush(fd_, TCIOFLUSH);
    }
    ~raw_tty() { ::close(fd_); }
    raw_tty(const raw_tty&) = delete;
    raw_tty& operator=(const raw_tty&) = delete;

    /// Reads until n bytes arrived or nothing came for `quiet`.
    std::vector<std::uint8_t> read_n(std::size_t n, std::chrono::milliseconds quiet) {
        std::vector<std::uint8_t> got;
        std::vector<std::uint8_t> buf(4096);
        while (got.size() < n) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(quiet.count())) <= 0)
                break;
            const auto r = ::read(fd_, buf.data(), std::min(buf.size(), n - got.size()));
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0)
                break;
            got.insert(got.end(), buf.begin(), buf.begin() + r);
        }
        return got;
    }

    /// Writes everything, waiting for room; false when no room came for `quiet`.
    bool write_all(const std::vector<std::uint8_t>& data, std::chrono::milliseconds quiet) {
        std::size_t done = 0;
        while (done < data.size()) {
            const auto r = ::write(fd_, data.data() + done, data.size() - done);
            if (r > 0) {
                done += static_cast<std::size_t>(r);
                continue;
            }
            if (r < 0 && errno != EAGAIN && errno != EINTR)
                return false;
            pollfd p{fd_, POLLOUT, 0};
            if (::poll(&p, 1, static_cast<int>(quiet.count())) <= 0)
                return false;
        }
        return ::tcdrain(fd_) == 0;
    }

private:
    int fd_;
};

class emulated_serial : public io::test::vm_test {};

TEST_F(emulated_serial, four_16550a_uarts_on_one_pci_function) {
    const auto ports = pci_uarts();
    ASSERT_EQ(ports.size(), 4U) << "pci-serial-4x should give four ttyS ports (is 8250.nr_uarts large enough?)";
    for (const auto& p : ports) {
        // /sys/class/tty/ttySN/type is the serial core's port type: 4 is PORT_16550A.
        EXPECT_EQ(attr(p.sys / "type"), "4") << p.tty << " is not a 16550A";
        const auto pci = ancestor_with(fs::canonical(p.sys), "vendor");
        EXPECT_EQ(driver_of(pci), "serial") << "8250_pci should drive " << pci;
        EXPECT_TRUE(fs::exists(p.tty));
    }
}

TEST_F(emulated_serial, ftdi_ft232_on_xhci) {
    const auto ports = ftdi_ports();
    ASSERT_EQ(ports.size(), 1U) << "usb-serial should give one ttyUSB port";
    EXPECT_EQ(driver_of(ports[0].sys / "device"), "ftdi_sio");
    const auto usb = ancestor_with(fs::canonical(ports[0].sys), "idVendor");
    const auto hcd = ancestor_with(usb.parent_path(), "vendor");
    EXPECT_EQ(driver_of(hcd), "xhci_hcd");
}

// What discovery and the udev rules make of the emulated serial cards.
TEST_F(emulated_serial, discovery_lists_the_serial_cards_with_their_ports) {
    ASSERT_EQ(io::test::run("udevadm settle --timeout=30"), 0);
    const auto uarts = pci_uarts();
    const auto cards = io::enumerate();
    const io::card_info* pci = nullptr;
    const io::card_info* ftdi = nullptr;
    for (const auto& c : cards) {
        if (c.model == "qemu-pci-serial-4x")
            pci = &c;
        if (c.model == "ftdi-ft232")
            ftdi = &c;
    }
    ASSERT_NE(pci, nullptr);
    ASSERT_NE(ftdi, nullptr);
    ASSERT_EQ(pci->serial_ports.size(), 4U);
    for (unsigned i = 0; i < 4; ++i) {
        EXPECT_EQ(pci->serial_ports[i].path, uarts.at(i).tty) << "port " << i << " in register order";
        EXPECT_EQ(pci->serial_ports[i].modes, "rs232");
        const fs::path link = "/dev/serial/by-card/" + pci->location + "/port" + std::to_string(i);
        ASSERT_TRUE(fs::is_symlink(link)) << link;
        EXPECT_EQ(fs::canonical(link), fs::path(uarts.at(i).tty));
    }
    EXPECT_EQ(pci->driver, "8250_pci");
    ASSERT_EQ(ftdi->serial_ports.size(), 1U);
    EXPECT_EQ(ftdi->serial_ports[0].path, "/dev/ttyUSB0");
    EXPECT_EQ(ftdi->serial_ports[0].modes, "multi");
    EXPECT_EQ(fs::canonical("/dev/serial/by-card/" + ftdi->location + "/port0"), fs::path("/dev/ttyUSB0"));
    EXPECT_EQ(attr("/sys/bus/usb-serial/devices/ttyUSB0/latency_timer"), "1") << "udev sets FTDI latency to 1 ms";

    // Port N of a card opens the right tty.
    io::serial_port port{*pci, 2};
    EXPECT_EQ(port.path(), fs::path(uarts.at(2).tty));
    try {
        io::serial_port none{*pci, 4};
        FAIL() << "port 4 of a 4-port card opened";
    } catch (const io::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("serial ports 0..3"), std::string::npos) << e.what();
    }
}

class cable_transfer : public io::test::vm_test, public ::testing::WithParamInterface<const char*> {
protected:
    void SetUp() override {
        vm_test::SetUp();
        auto ports = pci_uarts();
        for (auto& p : ftdi_ports())
            ports.push_back(p);
        for (auto& p : ports)
            if (p.cable == GetParam())
                port_ = p;
        ASSERT_FALSE(port_.tty.empty()) << "no guest tty for " << GetParam();
        tty_.emplace(port_.tty);
        ASSERT_EQ(cable_.order("drain " + port_.cable).rfind("ok ", 0), 0U);
    }

    static constexpr std::size_t size = 64 * 1024;
    io::test::emulated_port port_;
    std::optional<raw_tty> tty_;
    io::test::cable cable_;
};

TEST_P(cable_transfer, host_to_guest_arrives_intact) {
    cable_.post("send " + port_.cable + " " + std::to_string(size) + " 11");
    const auto got = tty_->read_n(size, 5s);
    EXPECT_EQ(cable_.answer(), "ok " + std::to_string(size));
    ASSERT_EQ(got.size(), size) << port_.tty << " received " << got.size() << " bytes";
    const auto want = io::test::pattern(11, size);
    const auto diff = std::mismatch(got.begin(), got.end(), want.begin());
    EXPECT_TRUE(diff.first == got.end()) << port_.tty << ": byte " << (diff.first - got.begin()) << " differs";
}

TEST_P(cable_transfer, guest_to_host_arrives_intact) {
    cable_.post("expect " + port_.cable + " " + std::to_string(size) + " 12 30000");
    EXPECT_TRUE(tty_->write_all(io::test::pattern(12, size), 5s)) << "write to " << port_.tty << " stalled";
    EXPECT_EQ(cable_.answer(), "ok " + std::to_string(size));
}

TEST_P(cable_transfer, round_trip_through_a_host_echo) {
    ASSERT_EQ(cable_.order("echo " + port_.cable + " on"), "ok");
    const auto data = io::test::pattern(13, 4096);
    ASSERT_TRUE(tty_->write_all(data, 5s));
    EXPECT_EQ(tty_->read_n(data.size(), 5s), data);
    EXPECT_EQ(cable_.order("echo " + port_.cable + " off"), "ok");
}

INSTANTIATE_TEST_SUITE_P(ports, cable_transfer, ::testing::Values("uart0", "uart1", "uart2", "uart3", "ftdi0"));

}  // namespace
