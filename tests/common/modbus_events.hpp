// SPDX-License-Identifier: MIT
// Helpers of the Modbus tests (native and in the VM): running an event loop
// until a condition holds, and collecting a module's events.
#pragma once

#include <io/event_loop.hpp>
#include <io/modbus.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <span>
#include <system_error>
#include <vector>

namespace io::test {

/// Runs the loop until pred() holds; false once `limit` has passed (only for
/// a test that would hang otherwise).
template <typename P>
bool run_until(io::event_loop& loop, P pred, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > end)
            return false;
        loop.run_once(std::chrono::milliseconds{10});
    }
    return true;
}

/// The events of a module, collected from the loop.
struct modbus_collector {
    modbus_collector(io::event_loop& loop, io::modbus_module& m)
        : reg{io::on_modbus_events(loop, m, [this](std::span<const io::modbus_event> ev, std::error_code ec) {
              ASSERT_FALSE(ec) << ec.message();
              events.insert(events.end(), ev.begin(), ev.end());
          })} {}
    std::vector<io::modbus_event> events;
    io::registration reg;
};

/// Runs the loop until the simulator (anything with requests(unit)) has
/// answered `n` more requests of `unit` than now: the polls that follow a
/// change have run.
template <typename Sim>
void wait_polls(io::event_loop& loop, Sim& sim, unsigned unit, unsigned n, std::chrono::milliseconds limit) {
    const unsigned target = sim.requests(unit) + n;
    ASSERT_TRUE(run_until(loop, [&] { return sim.requests(unit) >= target; }, limit));
}

}  // namespace io::test
