// SPDX-License-Identifier: MIT
// io::serial_port on the test VM's emulated hardware: QEMU's pci-serial-4x
// (four 16550A UARTs, 8250_pci) and usb-serial (an FTDI FT232, ftdi_sio), with
// the far end of each cable held by the host's cable agent.
//
// The FTDI unplug test removes the device and puts it back; it is the last
// test of this binary.
#include "cable.hpp"
#include "emulated_serial.hpp"
#include "vm_test.hpp"
#include "wait_log.hpp"

#include <io/error.hpp>
#include <io/event_loop.hpp>
#include <io/serial_port.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <asm/termbits.h>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <pthread.h>
#include <string>
#include <thread>
#include <vector>

// <asm/termbits.h> gives termios2 for an independent read of the port;
// glibc's <termios.h> must stay out of this file.
#include <sys/ioctl.h>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using io::serial_port;
using io::serial_settings;

namespace {

using io::test::tty_of;

std::vector<std::uint8_t> pattern(std::uint32_t seed, std::size_t n, std::uint8_t mask) {
    auto p = io::test::pattern(seed, n);
    for (auto& b : p)
        b &= mask;
    return p;
}

std::string run(const std::string& cmd) {
    std::string out;
    if (FILE* f = ::popen((cmd + " 2>&1").c_str(), "r")) {
        std::array<char, 512> buf{};
        while (std::fgets(buf.data(), buf.size(), f) != nullptr)
            out += buf.data();
        ::pclose(f);
    }
    return out;
}

/// The rates stty (glibc's tcgetattr) can name; others are BOTHER, checked
/// with TCGETS2.
bool standard_rate(std::uint32_t b) {
    for (const std::uint32_t r : {50U, 75U, 110U, 134U, 150U, 200U, 300U, 600U, 1200U, 1800U, 2400U, 4800U, 9600U,
                                  19200U, 38400U, 57600U, 115200U, 230400U, 460800U, 500000U, 576000U, 921600U,
                                  1000000U, 1152000U, 1500000U, 2000000U, 2500000U, 3000000U, 3500000U, 4000000U})
        if (r == b)
            return true;
    return false;
}

/// stty's words for s, each of which must appear in `stty -F PORT -a`.
std::vector<std::string> stty_words(const serial_settings& s) {
    std::vector<std::string> w{"cs" + std::to_string(s.data_bits())};
    const bool par = s.parity() != io::parity::none;
    w.push_back(par ? "parenb" : "-parenb");
    if (par) {
        const bool odd = s.parity() == io::parity::odd || s.parity() == io::parity::mark;
        const bool stick = s.parity() == io::parity::mark || s.parity() == io::parity::space;
        w.push_back(odd ? "parodd" : "-parodd");
        w.push_back(stick ? "cmspar" : "-cmspar");
        w.push_back("inpck");
    }
    w.push_back(s.stop_bits() == io::stop_bits::two ? "cstopb" : "-cstopb");
    w.push_back(s.flow_control() == io::flow_control::rts_cts ? "crtscts" : "-crtscts");
    const bool soft = s.flow_control() == io::flow_control::xon_xoff;
    w.push_back(soft ? "ixon" : "-ixon");
    w.push_back(soft ? "ixoff" : "-ixoff");
    for (const char* raw : {"clocal", "cread", "-icanon", "-echo", "-isig", "-opost", "-icrnl", "min = 1;", "time = 0;"})
        w.emplace_back(raw);
    if (standard_rate(s.baud()))
        w.push_back("speed " + std::to_string(s.baud()) + " baud;");
    return w;
}

}  // namespace


namespace {

class serial_port_vm : public io::test::vm_test {
protected:
    void SetUp() override {
        vm_test::SetUp();
        ASSERT_EQ(cable_.order("hello"), "ok ftdi0 uart0 uart1 uart2 uart3");
    }

    std::string tty(const std::string& cable) {
        auto t = tty_of(cable);
        EXPECT_FALSE(t.empty()) << "no guest tty for " << cable;
        return t;
    }

    /// Pattern data at settings s, n_in bytes from the host and n_out to it,
    /// compared byte for byte; the driver's counters must agree, and stty.
    void transfer(const std::string& cable, const serial_settings& s, std::size_t n_in, std::size_t n_out) {
        const auto path = tty(cable);
        ASSERT_FALSE(path.empty());
        serial_port port{path, s};
        const auto got_settings = port.settings();
        ASSERT_EQ(got_settings, s) << path << " took " << to_string(got_settings) << " for " << to_string(s);
        port.flush(io::serial_queue::both);
        ASSERT_EQ(cable_.order("drain " + cable).rfind("ok ", 0), 0U);

        // The independent checks: stty through glibc, and TCGETS2 for the rate.
        const auto stty = run("stty -F " + path + " -a");
        for (const auto& w : stty_words(s))
            EXPECT_NE(stty.find(w), std::string::npos) << "stty -F " << path << " lacks '" << w << "':\n" << stty;
        termios2 t2{};
        ASSERT_EQ(::ioctl(port.fd(), TCGETS2, &t2), 0);
        if ((t2.c_cflag & CBAUD) == BOTHER) {
            EXPECT_EQ(t2.c_ospeed, s.baud());
        }

        const std::uint8_t mask = static_cast<std::uint8_t>((1U << s.data_bits()) - 1U);
        const char* mask_arg = s.data_bits() < 8 ? (s.data_bits() == 7 ? " 0x7f" : " 0x3f") : "";
        const auto before = port.counters();
        const auto t0 = clock_type::now();

        // Host to guest.
        cable_.post("send " + cable + " " + std::to_string(n_in) + " 21" + mask_arg);
        std::vector<std::uint8_t> in(n_in);
        const auto got = port.read(std::as_writable_bytes(std::span{in}), {.total = 120s, .inter_byte = 10s});
        EXPECT_EQ(cable_.answer(), "ok " + std::to_string(n_in));
        ASSERT_EQ(got, n_in) << path << " received " << got << " of " << n_in << " bytes";
        const auto want_in = pattern(21, n_in, mask);
        const auto diff = std::mismatch(in.begin(), in.end(), want_in.begin());
        EXPECT_TRUE(diff.first == in.end()) << path << ": byte " << (diff.first - in.begin()) << " differs";
        const auto t1 = clock_type::now();

        // Guest to host.
        cable_.post("expect " + cable + " " + std::to_string(n_out) + " 22 120000" + mask_arg);
        const auto out = pattern(22, n_out, mask);
        EXPECT_EQ(port.write(std::as_bytes(std::span{out}), 120s), n_out);
        port.drain();
        EXPECT_EQ(cable_.answer(), "ok " + std::to_string(n_out));
        const auto t2end = clock_type::now();

        const auto after = port.counters();
        EXPECT_EQ(after.rx - before.rx, n_in) << "the driver's rx count";
        EXPECT_EQ(after.tx - before.tx, n_out) << "the driver's tx count";
        EXPECT_EQ(after.overrun, before.overrun);
        EXPECT_EQ(after.parity, before.parity);
        EXPECT_EQ(after.framing, before.framing);
        const auto sec = [](auto d) { return std::chrono::duration<double>(d).count(); };
        std::printf("  %-6s %-13s %-20s in %7zu bytes %4.1f s, out %7zu bytes %4.1f s\n", cable.c_str(),
                    path.c_str(), to_string(s).c_str(), n_in, sec(t1 - t0), n_out, sec(t2end - t1));
    }

    io::test::cable cable_;
};

constexpr std::size_t kib = 1024;
constexpr std::size_t mib = 1024 * kib;
// Under TCG the 16550's receive path costs an emulated interrupt per 8 bytes
// (12-20 s per MiB on a 2-core host), its transmit path a fifth of that: the
// UARTs receive less than they send, to keep the binary near a minute.

TEST_F(serial_port_vm, uart0_115200_8n1) {
    transfer("uart0", serial_settings{}.set_baud(115200), 256 * kib, mib);
}

TEST_F(serial_port_vm, uart1_9600_7e2) {
    transfer("uart1",
             serial_settings{}.set_baud(9600).set_data_bits(7).set_parity(io::parity::even).set_stop_bits(io::stop_bits::two),
             128 * kib, mib);
}

TEST_F(serial_port_vm, uart2_57600_8o1_rts_cts) {
    transfer("uart2",
             serial_settings{}.set_baud(57600).set_parity(io::parity::odd).set_flow_control(io::flow_control::rts_cts),
             128 * kib, mib);
}

TEST_F(serial_port_vm, uart3_19200_mark_and_31250_space_bother) {
    transfer("uart3", serial_settings{}.set_baud(19200).set_parity(io::parity::mark), 64 * kib, mib / 2);
    // 31250 (MIDI) has no Bnnn code: BOTHER.
    transfer("uart3", serial_settings{}.set_baud(31250).set_parity(io::parity::space), 64 * kib, mib / 2);
}

TEST_F(serial_port_vm, ftdi_3000000_8n1) {
    transfer("ftdi0", serial_settings{}.set_baud(3000000), mib, mib);
}

TEST_F(serial_port_vm, ftdi_250000_8e2_bother) {
    transfer("ftdi0", serial_settings{}.set_baud(250000).set_parity(io::parity::even).set_stop_bits(io::stop_bits::two),
             mib, mib);
}

TEST_F(serial_port_vm, ftdi_115200_7o1_rts_cts) {
    transfer("ftdi0",
             serial_settings{}.set_baud(115200).set_data_bits(7).set_parity(io::parity::odd).set_flow_control(
                 io::flow_control::rts_cts),
             mib, mib);
}

TEST_F(serial_port_vm, drivers_are_named) {
    EXPECT_EQ(serial_port{tty("uart0")}.driver(), "serial");
    EXPECT_EQ(serial_port{tty("ftdi0")}.driver(), "ftdi_sio");
}

TEST_F(serial_port_vm, rs485_and_rs422_are_refused_where_the_driver_lacks_them) {
    for (const char* cable : {"uart0", "ftdi0"}) {
        serial_port port{tty(cable), serial_settings{}.set_baud(9600)};
        for (const auto mode : {io::serial_mode::rs485, io::serial_mode::rs422}) {
            try {
                port.apply(serial_settings{}.set_mode(mode).set_delay_before_send(1ms));
                ADD_FAILURE() << cable << ": " << to_string(mode) << " was accepted";
            } catch (const std::system_error& e) {
                const std::string want = "RS-485 not supported by driver " + port.driver() + " on " + tty(cable);
                EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
                std::printf("  %s: %s\n", cable, e.what());
            }
            EXPECT_EQ(port.settings(), serial_settings{}.set_baud(9600)) << "the previous settings stay";
        }
    }
}

TEST_F(serial_port_vm, a_rate_beyond_the_uart_is_refused) {
    // pci-serial-4x's UARTs run from a 1.8432 MHz clock: 115200 at most.
    serial_port port{tty("uart0"), serial_settings{}.set_baud(57600)};
    try {
        port.apply(serial_settings{}.set_baud(3000000));
        ADD_FAILURE() << "3000000 baud accepted on a 115200 baud UART";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::error_code(EINVAL, std::system_category()));
        EXPECT_NE(std::string(e.what()).find("set baud 3000000 on " + tty("uart0") + ": driver serial keeps"),
                  std::string::npos)
            << e.what();
        std::printf("  %s\n", e.what());
    }
    EXPECT_EQ(port.settings().baud(), 57600U);
}

TEST_F(serial_port_vm, exclusive_open_names_the_holder) {
    serial_port first{tty("uart1")};
    try {
        serial_port second{tty("uart1")};
        ADD_FAILURE() << "opened twice";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::error_code(EBUSY, std::system_category()));
        EXPECT_NE(std::string(e.what()).find("in use by pid " + std::to_string(::getpid())), std::string::npos)
            << e.what();
    }
}

TEST_F(serial_port_vm, low_latency_on_the_uart_and_the_ftdi_latency_timer) {
    {
        serial_port port{tty("uart0")};
        const bool was = port.low_latency();
        port.set_low_latency(true);
        EXPECT_TRUE(port.low_latency());
        EXPECT_EQ(port.latency_timer(), -1) << "a 16550 has no latency timer";
        port.close();
        EXPECT_EQ(serial_port{tty("uart0")}.low_latency(), was) << "restored at close";
    }
    {
        serial_port port{tty("ftdi0")};
        const int was = port.latency_timer();
        // ftdi_sio goes to 16 ms when low latency ends; QEMU's FT232 starts at 0.
        const int normal = was >= 1 ? was : 16;
        std::printf("  ftdi0 latency_timer before: %d ms\n", was);
        port.set_low_latency(true);
        EXPECT_TRUE(port.low_latency());
        EXPECT_EQ(port.latency_timer(), 1);
        port.set_low_latency(false);
        EXPECT_FALSE(port.low_latency());
        EXPECT_EQ(port.latency_timer(), normal);
        port.set_low_latency(true);
        port.close();
        serial_port again{tty("ftdi0")};
        EXPECT_FALSE(again.low_latency()) << "restored at close";
        EXPECT_EQ(again.latency_timer(), normal) << "restored at close";
    }
}

TEST_F(serial_port_vm, inspection_and_kept_settings_on_a_uart_and_an_ftdi) {
    const auto kept = serial_settings{}.set_baud(19200).set_parity(io::parity::even);
    for (const char* cable : {"uart3", "ftdi0"}) {
        const auto path = tty(cable);
        std::string driver;
        {
            serial_port port{path, kept};
            driver = port.driver();
            port.keep_settings_on_close();
        }
        const auto before = run("stty -F " + path + " -a");
        for (const char* w : {"speed 19200 baud;", "parenb", "-parodd", "cs8", "-cstopb", "-crtscts"})
            EXPECT_NE(before.find(w), std::string::npos) << cable << ": stty lacks '" << w << "' of the kept settings:\n"
                                                          << before;
        const auto st = io::inspect_serial(path);
        EXPECT_EQ(run("stty -F " + path + " -a"), before) << cable << ": inspection changes nothing";
        EXPECT_EQ(st.driver, driver) << "the same driver as io::serial_port names";
        EXPECT_EQ(st.settings, kept) << cable << ": " << st.settings_error;
        EXPECT_TRUE(st.modem.has_value()) << cable;
        EXPECT_TRUE(st.counters.has_value()) << cable;
        EXPECT_TRUE(st.low_latency.has_value()) << cable;
        if (std::string(cable) == "ftdi0")
            EXPECT_GE(st.latency_timer, 0);
        else
            EXPECT_EQ(st.latency_timer, -1) << "a 16550 has no latency timer";
        std::printf("  %s: %s, driver %s, latency_timer %d\n", cable, path.c_str(), st.driver.c_str(),
                    st.latency_timer);
        serial_port{path}.keep_settings_on_close();  // back to 115200 8N1 for what follows
    }
}

TEST_F(serial_port_vm, modem_lines_in_the_uart_loopback) {
    serial_port port{tty("uart2")};
    // QEMU's socket chardev reports CTS, DSR and DCD asserted.
    const auto idle = port.modem();
    EXPECT_TRUE(idle.cts && idle.dsr && idle.dcd) << "cts " << idle.cts << " dsr " << idle.dsr << " dcd " << idle.dcd;
    // In the 16550's loopback the outputs feed the inputs: RTS->CTS, DTR->DSR.
    int loop = 0x8000;  // TIOCM_LOOP, in the kernel's asm/termios.h only
    ASSERT_EQ(::ioctl(port.fd(), TIOCMBIS, &loop), 0);
    for (const bool level : {false, true, false, true}) {
        port.set_rts(level);
        port.set_dtr(!level);
        const auto m = port.modem();
        EXPECT_EQ(m.rts, level);
        EXPECT_EQ(m.dtr, !level);
        EXPECT_EQ(m.cts, level) << "CTS follows RTS in loopback";
        EXPECT_EQ(m.dsr, !level) << "DSR follows DTR in loopback";
    }
    ASSERT_EQ(::ioctl(port.fd(), TIOCMBIC, &loop), 0);
}

TEST_F(serial_port_vm, the_event_loop_samples_modem_line_changes) {
    serial_port port{tty("uart2")};
    int loop_bit = 0x8000;  // TIOCM_LOOP: RTS feeds CTS
    ASSERT_EQ(::ioctl(port.fd(), TIOCMBIS, &loop_bit), 0);
    port.set_rts(false);
    io::event_loop loop;
    std::vector<bool> cts;
    auto reg = io::on_modem_change(loop, port, 5ms, [&](const io::modem_lines& m, std::error_code ec) {
        ASSERT_FALSE(ec) << ec.message();
        cts.push_back(m.cts);
    });
    for (const bool level : {true, false, true}) {
        auto flip = loop.call_after(1ms, [&] { port.set_rts(level); });
        const auto want = cts.size() + 1;
        for (int i = 0; i < 100 && cts.size() < want; ++i)
            loop.run_once(20ms);
    }
    EXPECT_EQ(cts, (std::vector<bool>{true, false, true}));
    ASSERT_EQ(::ioctl(port.fd(), TIOCMBIC, &loop_bit), 0);
}

void on_signal(int) {}

TEST_F(serial_port_vm, a_modem_wait_blocks_until_a_signal) {
    serial_port port{tty("uart3")};
    struct sigaction sa {};
    sa.sa_handler = on_signal;  // no SA_RESTART: the wait must end
    ASSERT_EQ(::sigaction(SIGUSR1, &sa, nullptr), 0);
    std::error_code ec;
    std::atomic<bool> done{false};
    std::thread waiter{[&] {
        (void)port.wait_modem_change({.cts = true, .dsr = true, .dcd = true, .ri = true}, ec);
        done = true;
    }};
    std::this_thread::sleep_for(300ms);
    EXPECT_FALSE(done) << "TIOCMIWAIT returned without a change: " << ec.message();
    const auto t0 = clock_type::now();
    while (!done && clock_type::now() - t0 < 5s) {
        ::pthread_kill(waiter.native_handle(), SIGUSR1);
        std::this_thread::sleep_for(20ms);
    }
    ASSERT_TRUE(done) << "a signal did not end the wait";
    waiter.join();
    EXPECT_EQ(ec, std::errc::interrupted) << ec.message();
}

TEST_F(serial_port_vm, break_drain_flush_on_a_uart) {
    serial_port port{tty("uart0")};
    EXPECT_NO_THROW(port.send_break(20ms));
    const std::vector<std::uint8_t> hello{'h', 'i', '\r', '\n'};
    EXPECT_EQ(port.write(std::as_bytes(std::span{hello})), hello.size());
    port.drain();
    EXPECT_EQ(cable_.order("hear uart0 5000"), "ok hi");
    EXPECT_EQ(cable_.order("say uart0 flushed"), "ok");
    const auto t0 = clock_type::now();
    while (port.available() < 9 && clock_type::now() - t0 < 5s)
        std::this_thread::sleep_for(5ms);
    EXPECT_EQ(port.available(), 9U);
    port.flush(io::serial_queue::input);
    EXPECT_EQ(port.available(), 0U);
}

TEST_F(serial_port_vm, frames_split_at_the_inter_byte_gap) {
    serial_port port{tty("uart1")};
    ASSERT_EQ(cable_.order("drain uart1").rfind("ok", 0), 0U);
    auto frames = std::async(std::launch::async, [&] {
        std::vector<std::size_t> sizes;
        std::vector<std::uint8_t> buf(1024);
        for (int i = 0; i < 2; ++i)
            sizes.push_back(port.read(std::as_writable_bytes(std::span{buf}), {.total = 10s, .inter_byte = 100ms}));
        return sizes;
    });
    EXPECT_EQ(cable_.order("send uart1 200 1"), "ok 200");
    std::this_thread::sleep_for(400ms);
    EXPECT_EQ(cable_.order("send uart1 120 2"), "ok 120");
    EXPECT_EQ(frames.get(), (std::vector<std::size_t>{200, 120}));

    std::vector<std::uint8_t> buf(16);
    io::test::wait_log log;
    const auto t0 = clock_type::now();
    EXPECT_EQ(port.read(std::as_writable_bytes(std::span{buf}), {.total = 100ms}), 0U);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0);
    EXPECT_GE(took, 100ms);
    EXPECT_TRUE(log.waits_end_by(100ms)) << log;
    std::printf("  total 100 ms on %s: returned after %lld ms\n", tty("uart1").c_str(),
                static_cast<long long>(took.count()));
}

// Last: the FTDI goes away under a blocked read and a blocked modem wait, then
// comes back for whatever runs after this binary.
class serial_port_vm_unplug : public serial_port_vm {};

TEST_F(serial_port_vm_unplug, ftdi_unplugged_mid_read_is_device_removed) {
    const auto path = tty("ftdi0");
    ASSERT_FALSE(path.empty());
    std::optional<serial_port> port;
    port.emplace(path, serial_settings{}.set_baud(115200));
    ASSERT_EQ(cable_.order("send ftdi0 100 3"), "ok 100");

    struct outcome {
        std::size_t bytes;
        std::error_code ec;
        clock_type::time_point when;
    };
    auto reader = std::async(std::launch::async, [&] {
        std::vector<std::uint8_t> buf(1000);
        std::error_code ec;
        const auto n = port->read(std::as_writable_bytes(std::span{buf}), {.total = 60s}, ec);
        return outcome{n, ec, clock_type::now()};
    });
    auto waiter = std::async(std::launch::async, [&] {
        std::error_code ec;
        (void)port->wait_modem_change({.cts = true, .dsr = true, .dcd = true, .ri = true}, ec);
        return outcome{0, ec, clock_type::now()};
    });
    std::this_thread::sleep_for(500ms);
    const auto t0 = clock_type::now();
    const auto del = cable_.order(R"(qmp {"execute":"device_del","arguments":{"id":"ftdi0"}})");
    EXPECT_EQ(del, R"(ok {"return": {}})");

    ASSERT_EQ(reader.wait_for(20s), std::future_status::ready) << "the read hangs after the unplug";
    const auto r = reader.get();
    EXPECT_EQ(r.bytes, 100U) << "the bytes that came before the unplug are kept";
    EXPECT_TRUE(io::is_device_removed(r.ec)) << r.ec.message();
    ASSERT_EQ(waiter.wait_for(20s), std::future_status::ready) << "the modem wait hangs after the unplug";
    const auto w = waiter.get();
    EXPECT_TRUE(io::is_device_removed(w.ec)) << w.ec.message();
    std::printf("  read ended %lld ms after device_del (%s), modem wait %lld ms (%s)\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(r.when - t0).count()),
                r.ec.message().c_str(),
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(w.when - t0).count()),
                w.ec.message().c_str());

    try {
        const std::vector<std::uint8_t> data(10, 0x55);
        port->write(std::as_bytes(std::span{data}), 1s);
        ADD_FAILURE() << "a write to the removed device succeeded";
    } catch (const std::system_error& e) {
        EXPECT_TRUE(io::is_device_removed(e.code())) << e.what();
        EXPECT_NE(std::string(e.what()).find("device removed"), std::string::npos) << e.what();
        std::printf("  %s\n", e.what());
    }
    EXPECT_NO_THROW(port.reset()) << "closing a removed port restores nothing and does not throw";

    // Put it back.
    // QEMU lets go of the chardev once the guest has finished with the device.
    std::string add;
    for (int i = 0; i < 100; ++i) {
        add = cable_.order(R"(qmp {"execute":"device_add","arguments":{"driver":"usb-serial","id":"ftdi0",)"
                           R"("bus":"xhci.0","chardev":"ftdi0","always-plugged":true}})");
        if (add.find("is in use") == std::string::npos)
            break;
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(add, R"(ok {"return": {}})");
    const auto until = clock_type::now() + 20s;
    while (tty_of("ftdi0").empty() && clock_type::now() < until)
        std::this_thread::sleep_for(100ms);
    ASSERT_FALSE(tty_of("ftdi0").empty()) << "the FTDI did not come back";
    std::this_thread::sleep_for(300ms);  // udev settles the new node
    serial_port again{tty_of("ftdi0")};
    const std::vector<std::uint8_t> hi{'b', 'a', 'c', 'k', '\r', '\n'};
    EXPECT_EQ(again.write(std::as_bytes(std::span{hi})), hi.size());
    EXPECT_EQ(cable_.order("hear ftdi0 5000"), "ok back");
}

}  // namespace
