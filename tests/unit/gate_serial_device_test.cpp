// SPDX-License-Identifier: MIT
// io::gate::serial_device on a pty whose modem ioctls (TIOCMGET, TIOCMBIS,
// TIOCMBIC, TIOCGICOUNT, TIOCMIWAIT) are answered through libio's system
// call seam, since a pty has none: births, changes by exception (from the
// modem line waiter and from polling), DCMD on DTR and RTS, and a port that
// fails and comes back. The real UART's side is tests/vm/serial_hw_test.cpp.
#include <io/error.hpp>
#include <io/event_loop.hpp>
#include <io/gate/serial_device.hpp>
#include <io/serial_port.hpp>

#include "loop_until.hpp"
#include "sys.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <linux/serial.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>

using namespace std::chrono_literals;
namespace gate = io::gate;

namespace {

constexpr auto guard = std::chrono::seconds{20};  // only against a hang

// The modem side of a UART, as the fake ioctls see it.
struct fake_uart {
    std::mutex mu;
    int bits = 0;                    // TIOCM_*
    serial_icounter_struct counts{};
    bool gone = false;               // every modem ioctl fails with EIO
    bool no_miwait = false;          // TIOCMIWAIT is ENOTTY, as on drivers without it
    bool loopback = false;           // RTS drives CTS, DTR drives DSR (an 8250 with TIOCM_LOOP)
    int wake = -1;                   // an eventfd: a TIOCMIWAIT in progress returns
    std::atomic<int> waits{0};       // TIOCMIWAIT calls

    void changed() {
        const std::uint64_t one = 1;
        [[maybe_unused]] const auto n = ::write(wake, &one, sizeof one);
    }
};

fake_uart* uart = nullptr;

int fail_with(int err) {
    errno = err;
    return -1;
}

int fake_ioctl(int fd, unsigned long request, void* arg) {
    auto& u = *uart;
    switch (request) {
    case TIOCMGET: {
        const std::lock_guard lock{u.mu};
        if (u.gone)
            return fail_with(EIO);
        *static_cast<int*>(arg) = u.bits;
        return 0;
    }
    case TIOCMBIS:
    case TIOCMBIC: {
        {
            const std::lock_guard lock{u.mu};
            if (u.gone)
                return fail_with(EIO);
            const int b = *static_cast<int*>(arg);
            u.bits = request == TIOCMBIS ? (u.bits | b) : (u.bits & ~b);
            if (u.loopback) {
                u.bits = (u.bits & ~(TIOCM_CTS | TIOCM_DSR)) | ((u.bits & TIOCM_RTS) != 0 ? TIOCM_CTS : 0) |
                         ((u.bits & TIOCM_DTR) != 0 ? TIOCM_DSR : 0);
                ++u.counts.cts;
            }
        }
        if (u.loopback)
            u.changed();
        return 0;
    }
    case TIOCGICOUNT: {
        const std::lock_guard lock{u.mu};
        if (u.gone)
            return fail_with(EIO);
        std::memcpy(arg, &u.counts, sizeof u.counts);
        return 0;
    }
    case TIOCMIWAIT: {
        ++u.waits;
        {
            const std::lock_guard lock{u.mu};
            if (u.no_miwait)
                return fail_with(ENOTTY);
        }
        // A real blocking call, so that the device's signal ends it (EINTR)
        // as it ends the kernel's wait.
        pollfd p{u.wake, POLLIN, 0};
        if (::poll(&p, 1, -1) < 0)
            return -1;
        std::uint64_t v = 0;
        [[maybe_unused]] const auto n = ::read(u.wake, &v, sizeof v);
        const std::lock_guard lock{u.mu};
        return u.gone ? fail_with(EIO) : 0;
    }
    default:
        return io::detail::real_sys().ioctl(fd, request, arg);
    }
}

const gate::metric* find(const std::vector<gate::metric>& ms, const std::string& name) {
    for (const auto& m : ms)
        if (m.name == name)
            return &m;
    return nullptr;
}

gate::metric command(const std::string& name, gate::value v) {
    gate::metric m;
    m.name = name;
    m.val = std::move(v);
    return m;
}

class gate_serial_device : public ::testing::Test {
protected:
    fake_uart fake;
    std::optional<io::detail::sys_override> seam;
    int master = -1;
    std::string slave;
    io::event_loop loop;
    std::vector<std::vector<gate::metric>> data;
    std::vector<std::pair<bool, std::string>> presence;
    std::vector<std::string> logged;

    void SetUp() override {
        fake.wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        ASSERT_GE(fake.wake, 0);
        uart = &fake;
        auto calls = io::detail::real_sys();
        calls.ioctl = fake_ioctl;
        seam.emplace(calls);
        master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        ASSERT_GE(master, 0);
        ASSERT_EQ(::grantpt(master), 0);
        ASSERT_EQ(::unlockpt(master), 0);
        slave = ::ptsname(master);
    }
    void TearDown() override {
        ::close(master);
        seam.reset();
        uart = nullptr;
        ::close(fake.wake);
    }

    std::unique_ptr<gate::serial_device> make(std::chrono::milliseconds poll, std::vector<std::string> writable = {}) {
        auto d = std::make_unique<gate::serial_device>(
            "pty", [p = slave] { return io::serial_port{p, io::control_only}; }, poll, writable, 20ms, loop,
            [this](std::vector<gate::metric> m) { data.push_back(std::move(m)); },
            [this](bool present, const std::string& why) { presence.emplace_back(present, why); });
        d->log = [this](const std::string& t) { logged.push_back(t); };
        return d;
    }

    void set(int bit, bool on) {
        {
            const std::lock_guard lock{fake.mu};
            fake.bits = on ? (fake.bits | bit) : (fake.bits & ~bit);
        }
        fake.changed();
    }

    template <typename P>
    void run_until(P done, const char* what) {
        io::test::run_loop_until(loop, done, what, guard);
    }

    // Runs the loop for d: what it publishes meanwhile is what by exception
    // must not publish.
    void run_for(std::chrono::milliseconds d) { io::test::run_loop_for(loop, d); }
};

}  // namespace

TEST_F(gate_serial_device, the_birth_lists_every_metric_with_its_value) {
    fake.bits = TIOCM_CTS | TIOCM_DTR;
    fake.counts.frame = 3;
    fake.counts.overrun = 5;
    fake.counts.buf_overrun = 2;
    fake.counts.brk = 1;
    fake.counts.rx = 1000;
    fake.counts.tx = 7;
    auto d = make(10ms);
    EXPECT_FALSE(d->published());
    d->start();
    ASSERT_TRUE(d->published());
    ASSERT_EQ(presence.size(), 1U);
    EXPECT_TRUE(presence[0].first);
    const auto b = d->birth_metrics();
    const std::vector<std::pair<std::string, gate::value>> want{
        {"Modem/CTS", true},
        {"Modem/DSR", false},
        {"Modem/DCD", false},
        {"Modem/RI", false},
        {"Modem/DTR", true},
        {"Modem/RTS", false},
        {"Errors/Frame", std::uint64_t{3}},
        {"Errors/Parity", std::uint64_t{0}},
        {"Errors/Overrun", std::uint64_t{7}},  // the UART's 5 and the tty buffer's 2
        {"Errors/Break", std::uint64_t{1}},
        {"Counters/Rx", std::uint64_t{1000}},
        {"Counters/Tx", std::uint64_t{7}},
    };
    ASSERT_EQ(b.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(b[i].name, want[i].first);
        EXPECT_EQ(b[i].val, want[i].second) << want[i].first;
        EXPECT_EQ(b[i].type, std::holds_alternative<bool>(want[i].second) ? gate::datatype::boolean
                                                                          : gate::datatype::uint64)
            << want[i].first;
    }
    run_for(60ms);
    EXPECT_TRUE(data.empty()) << "nothing changed, yet " << data.size() << " DDATA";
}

TEST_F(gate_serial_device, a_cts_change_is_one_ddata_without_waiting_for_the_poll) {
    auto d = make(60s);  // no poll in this test's time: the waiter alone reports
    d->start();
    run_until([&] { return fake.waits.load() > 0; }, "the waiter's TIOCMIWAIT");
    set(TIOCM_CTS, true);
    run_until([&] { return !data.empty(); }, "the DDATA of CTS");
    ASSERT_EQ(data[0].size(), 1U);
    EXPECT_EQ(data[0][0].name, "Modem/CTS");
    EXPECT_EQ(data[0][0].val, gate::value{true});
    EXPECT_TRUE(data[0][0].timestamp_ms.has_value());
    run_for(60ms);
    EXPECT_EQ(data.size(), 1U);
    set(TIOCM_CAR | TIOCM_CTS, false);  // CTS goes; DCD was off: one metric
    run_until([&] { return data.size() == 2; }, "the DDATA of CTS going");
    ASSERT_EQ(data[1].size(), 1U);
    EXPECT_EQ(data[1][0].name, "Modem/CTS");
    EXPECT_EQ(data[1][0].val, gate::value{false});
}

TEST_F(gate_serial_device, counters_are_reported_when_they_change_only) {
    auto d = make(10ms);
    d->start();
    run_for(80ms);
    EXPECT_TRUE(data.empty()) << "unchanged counters were published";
    {
        const std::lock_guard lock{fake.mu};
        ++fake.counts.parity;
        fake.counts.rx += 500;  // traffic: not before rx_tx_period (10 s)
    }
    run_until([&] { return !data.empty(); }, "the DDATA of the parity error");
    ASSERT_EQ(data[0].size(), 1U);
    EXPECT_EQ(data[0][0].name, "Errors/Parity");
    EXPECT_EQ(data[0][0].val, gate::value{std::uint64_t{1}});
    EXPECT_EQ(data[0][0].type, gate::datatype::uint64);
    run_for(80ms);
    EXPECT_EQ(data.size(), 1U) << "the same count was published again, or Rx before its period";
    EXPECT_EQ(d->birth_metrics()[11].val, gate::value{std::uint64_t{0}}) << "Rx as last published";
}

TEST_F(gate_serial_device, rx_and_tx_at_most_once_a_period) {
    auto d = make(10ms);
    d->rx_tx_period = 50ms;
    d->start();
    {
        const std::lock_guard lock{fake.mu};
        fake.counts.rx = 10;
    }
    run_until([&] { return !data.empty(); }, "the DDATA of Rx");
    ASSERT_EQ(data[0].size(), 1U);
    EXPECT_EQ(data[0][0].name, "Counters/Rx");
    EXPECT_EQ(data[0][0].val, gate::value{std::uint64_t{10}});
    {
        const std::lock_guard lock{fake.mu};
        fake.counts.rx = 20;
        fake.counts.tx = 3;
    }
    run_until([&] { return data.size() == 2; }, "the second DDATA of Rx");
    ASSERT_EQ(data[1].size(), 2U);
    EXPECT_EQ(find(data[1], "Counters/Rx")->val, gate::value{std::uint64_t{20}});
    EXPECT_EQ(find(data[1], "Counters/Tx")->val, gate::value{std::uint64_t{3}});
}

TEST_F(gate_serial_device, dcmd_sets_a_writable_line_and_refuses_the_rest) {
    auto d = make(10ms, {"DTR"});
    d->start();
    std::vector<gate::metric> confirmed;
    EXPECT_EQ(d->write(command("Modem/DTR", true), confirmed), gate::device::write_status::done);
    ASSERT_EQ(confirmed.size(), 1U);
    EXPECT_EQ(confirmed[0].name, "Modem/DTR");
    EXPECT_EQ(confirmed[0].val, gate::value{true});
    EXPECT_NE(fake.bits & TIOCM_DTR, 0);
    confirmed.clear();
    using ws = gate::device::write_status;
    EXPECT_EQ(d->write(command("Modem/RTS", true), confirmed), ws::not_writable);
    EXPECT_EQ(d->write(command("Modem/CTS", true), confirmed), ws::not_writable);
    EXPECT_EQ(d->write(command("Errors/Frame", std::uint64_t{0}), confirmed), ws::not_writable);
    EXPECT_EQ(d->write(command("Counters/Rx", std::uint64_t{0}), confirmed), ws::not_writable);
    EXPECT_EQ(d->write(command("Modem/XYZ", true), confirmed), ws::unknown_metric);
    EXPECT_EQ(d->write(command("Lines/A0", true), confirmed), ws::unknown_metric);
    EXPECT_EQ(d->write(command("Modem/DTR", std::uint64_t{1}), confirmed), ws::bad_value);
    EXPECT_TRUE(confirmed.empty());
    EXPECT_EQ(fake.bits & TIOCM_RTS, 0);
    run_for(60ms);
    EXPECT_TRUE(data.empty()) << "the poll published DTR again after its confirmation";
    EXPECT_THROW(make(10ms, {"CTS"}), io::invalid_argument);
}

TEST_F(gate_serial_device, rts_in_loopback_shows_as_cts) {
    fake.loopback = true;
    auto d = make(60s, {"RTS"});
    d->start();
    run_until([&] { return fake.waits.load() > 0; }, "the waiter's TIOCMIWAIT");
    std::vector<gate::metric> confirmed;
    ASSERT_EQ(d->write(command("Modem/RTS", true), confirmed), gate::device::write_status::done);
    run_until([&] { return !data.empty(); }, "the DDATA of CTS");
    ASSERT_EQ(data[0].size(), 1U);
    EXPECT_EQ(data[0][0].name, "Modem/CTS");
    EXPECT_EQ(data[0][0].val, gate::value{true});
}

TEST_F(gate_serial_device, a_failed_port_dies_and_is_born_again_when_it_answers) {
    auto d = make(10ms);
    d->start();
    ASSERT_EQ(presence.size(), 1U);
    {
        const std::lock_guard lock{fake.mu};
        fake.gone = true;
    }
    fake.changed();
    run_until([&] { return presence.size() == 2; }, "the DDEATH");
    EXPECT_FALSE(presence[1].first);
    EXPECT_NE(presence[1].second.find("Input/output error"), std::string::npos) << presence[1].second;
    EXPECT_FALSE(d->published());
    std::vector<gate::metric> confirmed;
    run_for(60ms);  // reopened every 20 ms in vain: no birth, and the failure logged once
    EXPECT_EQ(presence.size(), 2U);
    EXPECT_EQ(logged.size(), 1U);
    {
        const std::lock_guard lock{fake.mu};
        fake.gone = false;
        fake.bits = TIOCM_DSR;
    }
    run_until([&] { return presence.size() == 3; }, "the DBIRTH");
    EXPECT_TRUE(presence[2].first);
    EXPECT_TRUE(d->published());
    EXPECT_EQ(find(d->birth_metrics(), "Modem/DSR")->val, gate::value{true});
    EXPECT_TRUE(data.empty());
}

TEST_F(gate_serial_device, without_tiocmiwait_the_poll_sees_the_change) {
    fake.no_miwait = true;
    auto d = make(10ms);
    d->start();
    run_until([&] { return !logged.empty(); }, "the note that the driver cannot wait");
    EXPECT_NE(logged[0].find("cannot wait for modem line changes"), std::string::npos) << logged[0];
    set(TIOCM_RNG, true);
    run_until([&] { return !data.empty(); }, "the DDATA of RI");
    ASSERT_EQ(data[0].size(), 1U);
    EXPECT_EQ(data[0][0].name, "Modem/RI");
    EXPECT_TRUE(d->published());
}
