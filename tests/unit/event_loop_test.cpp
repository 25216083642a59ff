// SPDX-License-Identifier: MIT
#include <io/error.hpp>
#include <io/event_loop.hpp>

#include "sys.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <fcntl.h>
#include <poll.h>
#include <thread>
#include <vector>
#include <unistd.h>

using namespace std::chrono_literals;

namespace {

struct pipe_pair {
    int r = -1, w = -1;
    pipe_pair() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
            throw std::system_error(errno, std::system_category(), "pipe2");
        r = fds[0];
        w = fds[1];
    }
    ~pipe_pair() {
        if (r >= 0)
            ::close(r);
        if (w >= 0)
            ::close(w);
    }
    void put(char c = 'x') const { ASSERT_EQ(::write(w, &c, 1), 1); }
    void take() const {
        char c;
        ASSERT_EQ(::read(r, &c, 1), 1);
    }
};

TEST(event_loop, watch_calls_back_when_readable) {
    io::event_loop loop;
    pipe_pair p;
    int calls = 0;
    auto reg = loop.watch(p.r, io::ready::in, [&](io::readiness r) {
        EXPECT_TRUE(r.readable());
        EXPECT_FALSE(r.hangup());
        p.take();
        ++calls;
    });
    EXPECT_EQ(loop.run_once(0ms), 0U);
    p.put();
    EXPECT_EQ(loop.run_once(1000ms), 1U);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(loop.run_once(0ms), 0U) << "the byte was consumed, nothing is pending";
}

TEST(event_loop, watch_is_level_triggered) {
    io::event_loop loop;
    pipe_pair p;
    int calls = 0;
    auto reg = loop.watch(p.r, io::ready::in, [&](io::readiness) { ++calls; });
    p.put();
    loop.run_once(0ms);
    loop.run_once(0ms);
    EXPECT_EQ(calls, 2) << "unread data keeps the fd ready";
}

TEST(event_loop, a_callback_may_remove_its_own_registration) {
    io::event_loop loop;
    pipe_pair p;
    int calls = 0;
    io::registration reg;
    reg = loop.watch(p.r, io::ready::in, [&](io::readiness) {
        ++calls;
        reg.reset();
    });
    p.put();
    loop.run_once(0ms);
    loop.run_once(0ms);
    EXPECT_EQ(calls, 1);
    EXPECT_FALSE(reg);
}

TEST(event_loop, a_registration_removed_in_the_same_batch_is_not_called) {
    io::event_loop loop;
    pipe_pair a, b;
    int a_calls = 0, b_calls = 0;
    io::registration ra, rb;
    ra = loop.watch(a.r, io::ready::in, [&](io::readiness) {
        ++a_calls;
        rb.reset();
    });
    rb = loop.watch(b.r, io::ready::in, [&](io::readiness) {
        ++b_calls;
        ra.reset();
    });
    a.put();
    b.put();
    loop.run_once(0ms);
    EXPECT_EQ(a_calls + b_calls, 1) << "whichever ran first removed the other";
}

TEST(event_loop, a_callback_that_removes_itself_keeps_its_captures_until_it_returns) {
    io::event_loop loop;
    pipe_pair p;
    auto token = std::make_shared<int>(7);
    int seen = 0;
    io::registration reg;
    reg = loop.watch(p.r, io::ready::in, [&, token](io::readiness) {
        reg.reset();
        seen = *token;  // its own capture, after its registration is gone
    });
    EXPECT_EQ(token.use_count(), 2);
    p.put();
    EXPECT_EQ(loop.run_once(0ms), 1U);
    EXPECT_EQ(seen, 7);
    EXPECT_EQ(token.use_count(), 1) << "the removed callback is freed when the run ends";
}

TEST(event_loop, a_registration_made_in_a_batch_gets_no_event_of_one_removed_in_it) {
    // The new registration may take the removed one's place in the loop's
    // table; the removed one's event, still in the batch, is not its.
    io::event_loop loop;
    pipe_pair a, b, c;
    int a_calls = 0, b_calls = 0, c_calls = 0;
    io::registration ra, rb, rc;
    auto replace = [&](io::registration& other) {
        other.reset();
        rc = loop.watch(c.r, io::ready::in, [&](io::readiness) { ++c_calls; });
    };
    ra = loop.watch(a.r, io::ready::in, [&](io::readiness) {
        ++a_calls;
        if (!rc)
            replace(rb);
    });
    rb = loop.watch(b.r, io::ready::in, [&](io::readiness) {
        ++b_calls;
        if (!rc)
            replace(ra);
    });
    a.put();
    b.put();
    c.put();
    EXPECT_EQ(loop.run_once(0ms), 1U);
    EXPECT_EQ(a_calls + b_calls, 1);
    EXPECT_EQ(c_calls, 0);
    EXPECT_EQ(loop.run_once(0ms), 2U) << "the survivor and the new one";
    EXPECT_EQ(c_calls, 1);
}

TEST(event_loop, destroying_the_registration_stops_callbacks) {
    io::event_loop loop;
    pipe_pair p;
    int calls = 0;
    {
        auto reg = loop.watch(p.r, io::ready::in, [&](io::readiness) { ++calls; });
    }
    p.put();
    EXPECT_EQ(loop.run_once(0ms), 0U);
    EXPECT_EQ(calls, 0);
}

TEST(event_loop, hangup_is_reported) {
    io::event_loop loop;
    pipe_pair p;
    bool hung = false;
    auto reg = loop.watch(p.r, io::ready::in, [&](io::readiness r) { hung = r.hangup(); });
    ::close(p.w);
    p.w = -1;
    loop.run_once(1000ms);
    EXPECT_TRUE(hung);
}

TEST(event_loop, watching_an_fd_twice_is_refused) {
    io::event_loop loop;
    pipe_pair p;
    auto reg = loop.watch(p.r, io::ready::in, [](io::readiness) {});
    try {
        auto again = loop.watch(p.r, io::ready::in, [](io::readiness) {});
        FAIL() << "a second watch of the same fd was accepted";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EEXIST);
        EXPECT_NE(std::string(e.what()).find("watch fd"), std::string::npos) << e.what();
    }
}

TEST(event_loop, bad_arguments_are_refused) {
    io::event_loop loop;
    pipe_pair p;
    EXPECT_THROW((void)loop.watch(p.r, io::ready::in, nullptr), io::invalid_argument);
    EXPECT_THROW((void)loop.call_after(1ms, nullptr), io::invalid_argument);
    EXPECT_THROW((void)loop.call_every(0ms, [] {}), io::invalid_argument);
    EXPECT_THROW((void)loop.call_every(-5ms, [] {}), io::invalid_argument);
}

TEST(event_loop, call_after_fires_once_and_not_early) {
    io::event_loop loop;
    int calls = 0;
    const auto start = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point fired;
    auto reg = loop.call_after(20ms, [&] {
        ++calls;
        fired = std::chrono::steady_clock::now();
    });
    while (calls == 0)
        ASSERT_GT(loop.run_once(5000ms), 0U) << "the timer never fired";
    EXPECT_GE(fired - start, 20ms);
    EXPECT_EQ(loop.run_once(50ms), 0U);
    EXPECT_EQ(calls, 1);
}

TEST(event_loop, call_every_repeats_and_skips_missed_ticks) {
    io::event_loop loop;
    int calls = 0;
    auto reg = loop.call_every(5ms, [&] { ++calls; });
    while (calls < 3)
        ASSERT_GT(loop.run_once(5000ms), 0U);
    std::this_thread::sleep_for(30ms);  // about six periods go by unserved
    const int before = calls;
    loop.run_once(0ms);
    EXPECT_EQ(calls, before + 1) << "missed ticks are not replayed";
    reg.reset();
    std::this_thread::sleep_for(15ms);
    EXPECT_EQ(loop.run_once(0ms), 0U);
}

TEST(event_loop, call_every_from_a_first_deadline_keeps_its_phase) {
    using clock = io::event_loop::clock;
    io::event_loop loop;
    std::vector<clock::time_point> at;
    // A first deadline ahead: never called before first + k * period.
    const auto first = clock::now() + 30ms;
    {
        auto reg = loop.call_every(10ms, first, [&] { at.push_back(clock::now()); });
        while (at.size() < 3)
            ASSERT_GT(loop.run_once(5000ms), 0U);
    }
    for (std::size_t k = 0; k < at.size(); ++k)
        EXPECT_GE(at[k], first + k * 10ms) << "tick " << k << " came early";
    // A first deadline already passed: at once, then on the same phase.
    at.clear();
    const auto past = clock::now() - 25ms;
    auto reg = loop.call_every(10ms, past, [&] { at.push_back(clock::now()); });
    while (at.size() < 2)
        ASSERT_GT(loop.run_once(5000ms), 0U);
    const auto next_phase = past + ((at[0] - past) / 10ms + 1) * 10ms;
    EXPECT_GE(at[1], next_phase) << "the second tick keeps first + k * period";
    EXPECT_THROW((void)loop.call_every(0ms, past, [] {}), io::invalid_argument);
}

TEST(event_loop, stop_from_another_thread_ends_run) {
    io::event_loop loop;
    std::atomic<bool> ran{false};
    std::thread t{[&] {
        std::this_thread::sleep_for(20ms);
        ran = true;
        loop.stop();
    }};
    loop.run();
    EXPECT_TRUE(ran);
    t.join();
}

TEST(event_loop, stop_before_run_returns_at_once) {
    io::event_loop loop;
    loop.stop();
    loop.run();
    SUCCEED();
}

TEST(event_loop, stop_from_a_callback_ends_run_after_it) {
    io::event_loop loop;
    int calls = 0;
    auto reg = loop.call_every(1ms, [&] {
        if (++calls == 3)
            loop.stop();
    });
    loop.run();
    EXPECT_EQ(calls, 3);
}

TEST(event_loop, an_exception_from_a_callback_reaches_the_caller_and_the_loop_goes_on) {
    io::event_loop loop;
    pipe_pair p;
    int calls = 0;
    auto reg = loop.watch(p.r, io::ready::in, [&](io::readiness) {
        p.take();
        if (++calls == 1)
            throw std::runtime_error("from the callback");
    });
    p.put();
    std::error_code ec;
    EXPECT_THROW(loop.run_once(1000ms, ec), std::runtime_error) << "not swallowed, not std::terminate";
    p.put();
    EXPECT_EQ(loop.run_once(1000ms), 1U);
    EXPECT_EQ(calls, 2);
}

TEST(event_loop, its_fd_nests_in_another_loop) {
    io::event_loop loop;
    pipe_pair p;
    auto reg = loop.watch(p.r, io::ready::in, [](io::readiness) {});
    pollfd pf{loop.fd(), POLLIN, 0};
    EXPECT_EQ(::poll(&pf, 1, 0), 0);
    p.put();
    EXPECT_EQ(::poll(&pf, 1, 1000), 1) << "pending work makes the loop's fd readable";
}

int eintr_wait(int, epoll_event*, int, int) {
    errno = EINTR;
    return -1;
}

int ebadf_wait(int, epoll_event*, int, int) {
    errno = EBADF;
    return -1;
}

TEST(event_loop, a_signal_during_the_wait_is_not_an_error) {
    io::event_loop loop;
    auto fake = io::detail::real_sys();
    fake.epoll_wait = eintr_wait;
    io::detail::sys_override guard{fake};
    std::error_code ec;
    EXPECT_EQ(loop.run_once(10ms, ec), 0U);
    EXPECT_FALSE(ec);
    EXPECT_NO_THROW(loop.run_once(10ms));
}

TEST(event_loop, wait_errors_reach_the_caller) {
    io::event_loop loop;
    auto fake = io::detail::real_sys();
    fake.epoll_wait = ebadf_wait;
    io::detail::sys_override guard{fake};
    std::error_code ec;
    EXPECT_EQ(loop.run_once(10ms, ec), 0U);
    EXPECT_EQ(ec.value(), EBADF);
    try {
        loop.run_once(10ms);
        FAIL() << "no exception";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EBADF);
        EXPECT_EQ(std::string(e.what()).rfind("event loop: epoll_wait", 0), 0U) << e.what();
    }
}

// --- stop() against the batch: the kernel's epoll_wait behind the seam, with
// the ready events of each call put in the order that makes the race happen.
// The loop tags each registration's epoll data with a number counting up
// from 1 in the order they were made, and its own wake-up with 0, so the
// fake puts registrations in the order they were made and the wake-up last.
struct shaped_batches {
    int calls = 0;
    std::vector<int> sizes;                 // events returned by each call
    std::function<void(int call)> before;   // runs as the wait begins (a stop "from elsewhere")
    std::function<std::size_t(int call)> at_least = [](int) { return std::size_t{0}; };
} shaped;

int shaped_wait(int epfd, epoll_event* evs, int max, int timeout_ms) {
    const int call = ++shaped.calls;
    if (shaped.before)
        shaped.before(call);
    // Level-triggered: asking again returns the same ready set, and more as
    // they become due. Wait (bounded) until the batch the test needs is ready.
    const auto want = static_cast<int>(shaped.at_least(call));
    const auto until = std::chrono::steady_clock::now() + 5s;
    int n = 0;
    for (;;) {
        n = io::detail::real_sys().epoll_wait(epfd, evs, max, want > 0 ? 10 : timeout_ms);
        if (n < 0 || n >= want || std::chrono::steady_clock::now() > until)
            break;
    }
    if (n > 0)
        std::sort(evs, evs + n, [](const epoll_event& a, const epoll_event& b) {
            const auto key = [](std::uint64_t id) { return id == 0 ? UINT64_MAX : id; };
            return key(a.data.u64) < key(b.data.u64);
        });
    shaped.sizes.push_back(n);
    return n;
}

class event_loop_stop : public ::testing::Test {
protected:
    event_loop_stop() : guard_{fake()} { shaped = shaped_batches{}; }
    static io::detail::sys_calls fake() {
        auto f = io::detail::real_sys();
        f.epoll_wait = shaped_wait;
        return f;
    }
    io::detail::sys_override guard_;
};

TEST_F(event_loop_stop, a_stop_in_a_callback_skips_the_rest_of_its_batch) {
    io::event_loop loop;
    pipe_pair p;
    int watch_calls = 0, timer_calls = 0;
    auto w = loop.watch(p.r, io::ready::in, [&](io::readiness) {
        ++watch_calls;
        loop.stop();
    });
    auto t = loop.call_after(0ms, [&] { ++timer_calls; });
    p.put();
    shaped.at_least = [](int) { return std::size_t{2}; };  // the watch, then the timer, in one batch
    loop.run();
    ASSERT_EQ(shaped.sizes, std::vector<int>{2}) << "one wait, returning both";
    EXPECT_EQ(watch_calls, 1);
    EXPECT_EQ(timer_calls, 0) << "the timer after the stopping callback ran in the same batch";

    // Nothing was lost: the timer's expiry is still pending for the next run.
    p.take();
    shaped.at_least = [](int) { return std::size_t{1}; };
    EXPECT_EQ(loop.run_once(1000ms), 1U);
    EXPECT_EQ(timer_calls, 1);
    EXPECT_EQ(watch_calls, 1);
}

TEST_F(event_loop_stop, a_timer_due_with_the_wake_up_of_a_stop_does_not_run) {
    io::event_loop loop;
    pipe_pair p;
    int timer_calls = 0;
    io::registration t;
    auto w = loop.watch(p.r, io::ready::in, [&](io::readiness) {
        p.take();
        t = loop.call_after(0ms, [&] { ++timer_calls; });  // due at once: in the next wait
        loop.stop();
    });
    p.put();
    // Were there a next wait, it would return the timer before the wake-up.
    shaped.at_least = [](int call) { return std::size_t(call == 1 ? 1 : 2); };
    loop.run();
    EXPECT_EQ(timer_calls, 0) << "a callback ran after stop() was called on the loop's thread";
    EXPECT_EQ(shaped.calls, 1) << "run() waited again after the stop";
    shaped.at_least = [](int) { return std::size_t{1}; };
    EXPECT_EQ(loop.run_once(1000ms), 1U) << "the timer is run by the next run";
    EXPECT_EQ(timer_calls, 1);
}

TEST_F(event_loop_stop, a_stop_during_the_wait_beats_a_timer_in_the_same_batch) {
    io::event_loop loop;
    int timer_calls = 0;
    auto t = loop.call_after(0ms, [&] { ++timer_calls; });
    // Another thread (or a signal handler) stops the loop while it waits, and
    // the wait returns the timer first, then the wake-up.
    shaped.before = [&](int call) {
        if (call == 1)
            loop.stop();
    };
    shaped.at_least = [](int call) { return std::size_t(call == 1 ? 2 : 1); };
    loop.run();
    ASSERT_EQ(shaped.sizes, std::vector<int>{2});
    EXPECT_EQ(timer_calls, 0) << "the timer ran after stop() returned";
    shaped.at_least = [](int) { return std::size_t{1}; };
    EXPECT_EQ(loop.run_once(1000ms), 1U);
    EXPECT_EQ(timer_calls, 1);
}

TEST_F(event_loop_stop, a_stop_outside_run_once_ends_the_next_one_only) {
    io::event_loop loop;
    pipe_pair p;
    int calls = 0;
    auto w = loop.watch(p.r, io::ready::in, [&](io::readiness) { ++calls; });
    p.put();
    loop.stop();
    EXPECT_EQ(loop.run_once(1000ms), 0U) << "the pending stop ends it before any callback";
    EXPECT_EQ(shaped.calls, 0) << "and before any wait";
    EXPECT_EQ(loop.run_once(1000ms), 1U) << "the stop was used up";
    EXPECT_EQ(calls, 1);
}

TEST(event_loop, removing_a_registration_whose_fd_was_closed_spares_the_fd_that_took_its_number) {
    io::event_loop loop;
    pipe_pair old_pipe, new_pipe;
    int old_calls = 0, new_calls = 0;
    auto stale = loop.watch(old_pipe.r, io::ready::in, [&](io::readiness) { ++old_calls; });
    // The owner closes its fd without removing the registration, and the
    // number goes to another file that is then watched.
    const int number = old_pipe.r;
    ASSERT_EQ(::dup2(new_pipe.r, number), number);
    auto fresh = loop.watch(number, io::ready::in, [&](io::readiness) { ++new_calls; });
    stale.reset();
    new_pipe.put();
    EXPECT_EQ(loop.run_once(1000ms), 1U) << "the stale removal took the new fd out of the loop";
    EXPECT_EQ(new_calls, 1);
    EXPECT_EQ(old_calls, 0);
}

}  // namespace
