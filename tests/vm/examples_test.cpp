// SPDX-License-Identifier: MIT
// libio's example programs, run as shipped against a virtual card: they are
// what application developers copy first, so they must work.
#include "sim_card.hpp"
#include "tool_runner.hpp"
#include "vm_test.hpp"

#include <chrono>
#include <thread>

namespace {

using namespace std::chrono_literals;
using io::test::contains;

class examples : public io::test::vm_test {};

TEST_F(examples, cycle_copies_inputs_to_outputs_every_period_on_io_rt) {
    io::test::sim_card card{"cos32"};
    card.loopback(false);
    card.set_inputs("a5");  // IN0, IN2, IN5, IN7
    io::test::tool_process p{{EXAMPLE_CYCLE, card.name(), "IN", "OUT", "--cycles", "600", "--period-us", "1000",
                              "--cpu", "0"}};
    // Once the loop runs (start-up under TCG can take a while), one change.
    const auto running = p.read_line(30s);
    ASSERT_TRUE(running.has_value()) << "cycle did not start";
    EXPECT_EQ(*running, "running: IN -> OUT every 1000 us on " + card.name());
    std::this_thread::sleep_for(100ms);
    card.set_inputs("5a");
    const auto r = p.wait(30s);
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "600 cycles of 1000 us on " + card.name() + " (cos32), SCHED_FIFO 80")) << r.out;
    EXPECT_TRUE(contains(r.out, "input changed in 1 cycles")) << r.out;
    EXPECT_TRUE(contains(r.out, "wake-up") && contains(r.out, "p99.9")) << r.out;
    EXPECT_EQ(r.err, "") << "root in the VM is granted every real-time setting";
    // OUT0..31 are lines 32..63: they hold the last input copied.
    EXPECT_EQ(io::test::parse_mask(card.outputs()) >> 32, 0x5aU) << card.outputs();
}

TEST_F(examples, cycle_refuses_bad_options_saying_what_is_allowed) {
    const auto r = io::test::run_tool({EXAMPLE_CYCLE, "cos32", "IN", "OUT", "--period-us", "5"});
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(contains(r.err, "--period-us wants a whole number from 10 to 10000000, not '5'")) << r.err;
}

}  // namespace
