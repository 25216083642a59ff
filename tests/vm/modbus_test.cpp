// SPDX-License-Identifier: MIT
// Modbus RTU over the test VM's 16550A UART (pci-serial-4x, 8250_pci): the
// cable agent runs simulated SeaI/O modules (tests/native/seaio_sim.py on
// pymodbus) on the host end of uart1's cable, and libio in the guest opens
// the port through its serial path (io::serial_port, by the modbus-rtu URI).
// Every wait is for a condition the simulator reports (its request count, a
// queued event); the deadline only ends a test that would otherwise hang.
#include "cable.hpp"
#include "emulated_serial.hpp"
#include "modbus_events.hpp"

#include <io/error.hpp>
#include <io/event_loop.hpp>
#include <io/modbus.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using io::modbus_event;
using kind = io::modbus_event::kind;
constexpr auto deadline = 60s;  // TCG is slow; only for a test that would hang
constexpr const char* uart = "uart1";

// Modules 1 (a 410) and 2 (a 430) on the host end of the cable, for one test.
class host_modules {
public:
    host_modules() {
        const auto r = cable_.order(std::string("modbus ") + uart + " start 1:410 2:430");
        if (r != "ok")
            throw std::runtime_error("modbus start on " + std::string(uart) + ": " + r);
    }
    ~host_modules() { (void)cable_.order(std::string("modbus ") + uart + " stop"); }
    host_modules(const host_modules&) = delete;
    host_modules& operator=(const host_modules&) = delete;

    /// One command to the simulator: its answer, or "err ...".
    std::string cmd(const std::string& c) {
        const auto r = cable_.order(std::string("modbus ") + uart + " " + c);
        return r.starts_with("ok ") ? r.substr(3) : r;
    }
    unsigned requests(unsigned unit) {
        const auto r = cmd("requests " + std::to_string(unit));
        if (!r.starts_with("requests "))
            throw std::runtime_error("requests: " + r);
        return static_cast<unsigned>(std::stoul(r.substr(9)));
    }

private:
    io::test::cable cable_;
};

template <typename P>
bool run_until(io::event_loop& loop, P pred) {
    return io::test::run_until(loop, pred, deadline);
}
using collector = io::test::modbus_collector;
void wait_polls(io::event_loop& loop, host_modules& sim, unsigned unit, unsigned n) {
    io::test::wait_polls(loop, sim, unit, n, deadline);
}

class ModbusUart : public ::testing::TestWithParam<unsigned> {
protected:
    void SetUp() override {
        tty_ = io::test::tty_of(uart);
        ASSERT_FALSE(tty_.empty()) << "no guest tty for " << uart << " (vm.py run --serial)";
    }
    std::string uri() const {
        return "modbus-rtu:" + tty_ + "?baud=" + std::to_string(GetParam()) + "&timeout=1000";
    }
    std::string tty_;
    host_modules sim_;
};

TEST_P(ModbusUart, TwoModulesOnOneBusReadAndWrite) {
    io::modbus_bus bus{uri()};
    EXPECT_EQ(bus.identify(1).name, "410");  // Sealevel's Get Config (0x45)
    EXPECT_EQ(bus.identify(2).name, "430");
    io::modbus_module a(bus, 1);
    io::modbus_module b(bus, 2);
    EXPECT_EQ(a.info().model, "seaio-410");
    EXPECT_EQ(b.info().model, "seaio-430");
    EXPECT_EQ(sim_.cmd("di 1 0 1"), "ok");
    EXPECT_EQ(sim_.cmd("di 1 15 1"), "ok");
    EXPECT_EQ(sim_.cmd("di 2 20 1"), "ok");
    EXPECT_EQ(a.read_port("DI"), 0x8001U);
    EXPECT_EQ(b.read_port("DI"), 0x100000U);
    EXPECT_TRUE(b.get(b.find_line("DI20")));
    EXPECT_FALSE(b.get(b.find_line("DI21")));
    a.write_port("DO", 0xA5A5);
    EXPECT_EQ(sim_.cmd("do 1"), "do 0xa5a5");
    a.set(a.find_line("DO0"), false);
    EXPECT_EQ(sim_.cmd("do 1"), "do 0xa5a4");
    EXPECT_EQ(a.read_port("DO"), 0xA5A4U);
    EXPECT_THROW(b.find_line("DO0"), io::invalid_argument);
}

// Polling two modules, one of which goes silent and comes back. (It was
// intermittently slow, 130-470 s instead of 10: the test's get() on the
// silent module waited for the wire behind dozens of the bus thread's
// polls; call() now hands the wire over; see
// ModbusTcp.ACallerIsNotStarvedByPollsOfASilentModule natively.)
class ModbusUartPolling : public ModbusUart {};

TEST_P(ModbusUartPolling, PollingSeesEdgesAndAModuleThatGoesSilentAndComesBack) {
    io::modbus_bus bus{uri()};
    io::modbus_module a(bus, 1, "410");
    io::modbus_module b(bus, 2, "430");
    io::event_loop loop;
    collector ca(loop, a);
    collector cb(loop, b);
    a.start_polling(20ms);
    b.start_polling(20ms);
    wait_polls(loop, sim_, 1, 1);
    wait_polls(loop, sim_, 2, 1);  // both polls took the levels

    EXPECT_EQ(sim_.cmd("di 2 31 1"), "ok");
    EXPECT_EQ(sim_.cmd("di 1 4 1"), "ok");
    ASSERT_TRUE(run_until(loop, [&] { return !ca.events.empty() && !cb.events.empty(); }));
    wait_polls(loop, sim_, 1, 2);
    wait_polls(loop, sim_, 2, 2);
    ASSERT_EQ(ca.events.size(), 1U);
    ASSERT_EQ(cb.events.size(), 1U);
    EXPECT_EQ(ca.events[0].what, kind::edge);
    EXPECT_EQ(ca.events[0].line, 4U);
    EXPECT_EQ(ca.events[0].change, io::edge::rising);
    EXPECT_EQ(cb.events[0].what, kind::edge);
    EXPECT_EQ(cb.events[0].line, 31U);
    EXPECT_EQ(cb.events[0].change, io::edge::rising);

    // Module 2 stops answering (unplugged from the bus): gone, module 1 unaffected.
    EXPECT_EQ(sim_.cmd("fault 2 silent"), "ok");
    ASSERT_TRUE(run_until(loop, [&] { return cb.events.size() >= 2; }));
    EXPECT_EQ(cb.events[1].what, kind::gone);
    EXPECT_EQ(cb.events[1].error, std::errc::timed_out);
    EXPECT_FALSE(b.present());
    std::error_code ec;
    (void)b.get(0, ec);
    EXPECT_EQ(ec, std::errc::timed_out);
    EXPECT_EQ(sim_.cmd("di 1 4 0"), "ok");
    ASSERT_TRUE(run_until(loop, [&] { return ca.events.size() >= 2; }));
    EXPECT_EQ(ca.events[1].what, kind::edge);
    EXPECT_EQ(ca.events[1].change, io::edge::falling);
    EXPECT_TRUE(a.present());

    // It answers again, with an input changed while it was away.
    EXPECT_EQ(sim_.cmd("di 2 31 0"), "ok");
    EXPECT_EQ(sim_.cmd("fault 2 none"), "ok");
    ASSERT_TRUE(run_until(loop, [&] { return cb.events.size() >= 4; }));
    wait_polls(loop, sim_, 2, 2);
    ASSERT_EQ(cb.events.size(), 4U);
    EXPECT_EQ(cb.events[2].what, kind::back);
    EXPECT_EQ(cb.events[3].what, kind::edge);
    EXPECT_EQ(cb.events[3].line, 31U);
    EXPECT_EQ(cb.events[3].change, io::edge::falling);
    EXPECT_TRUE(b.present());
    EXPECT_EQ(a.lost_events(), 0U);
    EXPECT_EQ(b.lost_events(), 0U);
}

INSTANTIATE_TEST_SUITE_P(baud, ModbusUart, ::testing::Values(9600U, 115200U),
                         [](const auto& p) { return std::to_string(p.param); });
INSTANTIATE_TEST_SUITE_P(baud, ModbusUartPolling, ::testing::Values(9600U, 115200U),
                         [](const auto& p) { return std::to_string(p.param); });

}  // namespace
