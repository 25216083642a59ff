// SPDX-License-Identifier: MIT
// Driving an io::event_loop from a test: run it until a condition holds (the
// test fails, instead of hanging, when it does not within the limit), or for
// a while, to see what a component does meanwhile.
#pragma once

#include <io/event_loop.hpp>

#include <gtest/gtest.h>

#include <chrono>

namespace io::test {

/// Runs loop until done() holds; fails the test ("waited in vain for what")
/// after limit, which only guards against a hang.
template <typename Done>
void run_loop_until(io::event_loop& loop, Done done, const char* what,
                    std::chrono::milliseconds limit = std::chrono::seconds{20}) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        ASSERT_LT(std::chrono::steady_clock::now(), end) << "waited in vain for " << what;
        loop.run_once(std::chrono::milliseconds{5});
    }
}

/// Runs loop for d.
inline void run_loop_for(io::event_loop& loop, std::chrono::milliseconds d) {
    const auto end = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < end)
        loop.run_once(std::chrono::milliseconds{5});
}

}  // namespace io::test
