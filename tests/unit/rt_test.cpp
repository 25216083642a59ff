// SPDX-License-Identifier: MIT
#include <io/error.hpp>
#include <io/rt.hpp>

#include "sys.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace std::chrono_literals;
using io::rt::latency_histogram;

namespace {

// latency_histogram

TEST(latency_histogram, empty_says_zero) {
    latency_histogram h;
    EXPECT_EQ(h.count(), 0U);
    EXPECT_EQ(h.percentile_ns(50), 0);
    EXPECT_EQ(h.min_ns(), 0);
    EXPECT_EQ(h.max_ns(), 0);
    EXPECT_TRUE(h.buckets().empty());
}

TEST(latency_histogram, buckets_tile_the_range) {
    // Every bucket starts where the previous ended, and values map into the
    // bucket whose range holds them.
    for (std::size_t i = 1; i + 1 < latency_histogram::num_buckets; ++i) {
        ASSERT_EQ(latency_histogram::lower_of(i), latency_histogram::upper_of(i - 1) + 1) << "bucket " << i;
        ASSERT_EQ(latency_histogram::index_of(latency_histogram::lower_of(i)), i);
        ASSERT_EQ(latency_histogram::index_of(latency_histogram::upper_of(i)), i);
    }
    EXPECT_EQ(latency_histogram::index_of(std::uint64_t{1} << 50), latency_histogram::num_buckets - 1);
}

TEST(latency_histogram, small_values_are_exact) {
    latency_histogram h;
    for (int v = 1; v <= 100; ++v)
        h.record_ns(v);
    EXPECT_EQ(h.count(), 100U);
    EXPECT_EQ(h.percentile_ns(50), 50);
    EXPECT_EQ(h.percentile_ns(99), 99);
    EXPECT_EQ(h.percentile_ns(100), 100);
    EXPECT_EQ(h.percentile_ns(0), 1);
    EXPECT_EQ(h.min_ns(), 1);
    EXPECT_EQ(h.max_ns(), 100);
    EXPECT_DOUBLE_EQ(h.mean_ns(), 50.5);
}

TEST(latency_histogram, percentiles_are_within_the_bucket_precision) {
    latency_histogram h;
    // 1 us .. 10 ms in 1 us steps: the p-th percentile is p% of 10 ms.
    for (std::int64_t v = 1000; v <= 10'000'000; v += 1000)
        h.record_ns(v);
    const auto s = h.summarize();
    EXPECT_EQ(s.n, 10'000U);
    auto near = [](std::int64_t got, double want) {
        return std::abs(static_cast<double>(got) - want) <= want / 64.0 + 1000.0;
    };
    EXPECT_TRUE(near(s.p50, 5e6)) << s.p50;
    EXPECT_TRUE(near(s.p90, 9e6)) << s.p90;
    EXPECT_TRUE(near(s.p99, 9.9e6)) << s.p99;
    EXPECT_TRUE(near(s.p999, 9.99e6)) << s.p999;
    EXPECT_EQ(s.max, 10'000'000);
    EXPECT_EQ(s.min, 1000);
}

TEST(latency_histogram, a_percentile_never_exceeds_the_max) {
    latency_histogram h;
    h.record(1234567ns);
    EXPECT_EQ(h.percentile_ns(50), 1234567);
    EXPECT_EQ(h.percentile_ns(99.9), 1234567);
}

TEST(latency_histogram, negative_samples_count_as_zero_and_huge_ones_overflow) {
    latency_histogram h;
    h.record_ns(-5);
    h.record(std::chrono::hours{24});
    EXPECT_EQ(h.min_ns(), 0);
    EXPECT_EQ(h.max_ns(), std::chrono::nanoseconds{std::chrono::hours{24}}.count());
    EXPECT_EQ(h.percentile_ns(100), h.max_ns());
}

TEST(latency_histogram, merge_and_reset) {
    latency_histogram a, b;
    a.record_ns(10);
    b.record_ns(1000);
    b.record_ns(2000);
    a.merge(b);
    EXPECT_EQ(a.count(), 3U);
    EXPECT_EQ(a.min_ns(), 10);
    EXPECT_EQ(a.max_ns(), 2000);
    const auto bs = a.buckets();
    ASSERT_EQ(bs.size(), 3U);
    EXPECT_EQ(bs[0].lower, 10);
    EXPECT_EQ(bs[0].count, 1U);
    a.reset();
    EXPECT_EQ(a.count(), 0U);
    EXPECT_TRUE(a.buckets().empty());
}

// periodic_timer

TEST(periodic_timer, rejects_a_period_that_is_not_positive) {
    EXPECT_THROW(io::rt::periodic_timer{0ns}, io::invalid_argument);
    EXPECT_THROW(io::rt::periodic_timer{-1ms}, io::invalid_argument);
}

TEST(periodic_timer, wakes_on_absolute_deadlines) {
    const auto start = io::rt::periodic_timer::clock::now();
    io::rt::periodic_timer t{2ms, start + 2ms};
    for (int i = 0; i < 5; ++i) {
        const auto late = t.wait();
        EXPECT_GE(late.count(), 0);
    }
    const auto elapsed = io::rt::periodic_timer::clock::now() - start;
    // Five periods; the deadlines do not drift with the wake-up latency.
    EXPECT_GE(elapsed, 10ms);
    EXPECT_EQ(t.cycles(), 5U);
    // On a loaded machine a wake-up may come later than a whole period:
    // that deadline is skipped, and the grid stays.
    EXPECT_EQ(t.next_deadline(), start + 2ms * (6 + static_cast<long>(t.overruns())));
}

TEST(periodic_timer, skips_and_counts_deadlines_the_body_ran_past) {
    const auto start = io::rt::periodic_timer::clock::now();
    io::rt::periodic_timer t{1ms, start + 1ms};
    std::this_thread::sleep_for(5500us);  // a body that overran by at least 4.5 periods
    const auto before = io::rt::periodic_timer::clock::now();
    (void)t.wait();
    const auto after = io::rt::periodic_timer::clock::now();
    // wait() slept until d, the first deadline of the grid after the moment
    // it was called; every deadline from the first up to d was missed. These
    // hold however long the machine took, before, in or after the call.
    const auto d = t.next_deadline() - 1ms;
    EXPECT_EQ((d - start) % 1ms, 0ns) << "still on the original grid";
    EXPECT_GT(d, before) << "slept until a deadline that was ahead when it was called";
    EXPECT_LE(d - 1ms, after) << "and the first such deadline, not a later one";
    EXPECT_GE(t.overruns(), 5U);
    EXPECT_EQ(t.overruns(), static_cast<std::uint64_t>((d - (start + 1ms)) / 1ms)) << "each missed deadline counted once";
}

// Privileges: the errors must say what to grant. A child process gives up
// root (when it is root) and its rtprio and memlock limits, then tries.

std::string in_unprivileged_child(void (*fn)()) {
    int p[2];
    if (::pipe(p) != 0)
        return "pipe failed";
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::close(p[0]);
        rlimit zero{0, 0};
        ::setrlimit(RLIMIT_RTPRIO, &zero);
        ::setrlimit(RLIMIT_MEMLOCK, &zero);
        if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0))
            ::_exit(3);
        std::string msg = "no error";
        try {
            fn();
        } catch (const std::system_error& e) {
            msg = std::to_string(e.code().value()) + " " + e.what();
        } catch (const std::exception& e) {
            msg = std::string("other exception: ") + e.what();
        }
        (void)!::write(p[1], msg.data(), msg.size());
        ::_exit(0);
    }
    ::close(p[1]);
    std::string out;
    char buf[512];
    for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;)
        out.append(buf, static_cast<std::size_t>(n));
    ::close(p[0]);
    int st = 0;
    ::waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return "child failed to drop privileges";
    return out;
}

TEST(rt, set_fifo_without_privilege_says_what_to_grant) {
    const auto msg = in_unprivileged_child([] { io::rt::set_fifo(80); });
    EXPECT_EQ(msg.rfind(std::to_string(EPERM) + " ", 0), 0U) << msg;
    EXPECT_NE(msg.find("set SCHED_FIFO priority 80"), std::string::npos) << msg;
    EXPECT_NE(msg.find("CAP_SYS_NICE"), std::string::npos) << msg;
    EXPECT_NE(msg.find("rtprio"), std::string::npos) << msg;
    EXPECT_NE(msg.find("ulimit -r 80"), std::string::npos) << msg;
}

TEST(rt, lock_memory_without_privilege_says_what_to_grant) {
#if defined(__SANITIZE_ADDRESS__)
    // ASan's terabytes of reserved shadow memory change how mlockall is
    // accounted against RLIMIT_MEMLOCK; the plain build runs this test.
    GTEST_SKIP() << "checked in the unsanitized build";
#endif
    const auto msg = in_unprivileged_child([] { io::rt::lock_memory(); });
    const bool eperm = msg.rfind(std::to_string(EPERM) + " ", 0) == 0;
    const bool enomem = msg.rfind(std::to_string(ENOMEM) + " ", 0) == 0;
    EXPECT_TRUE(eperm || enomem) << msg;
    EXPECT_NE(msg.find("lock memory"), std::string::npos) << msg;
    EXPECT_NE(msg.find("CAP_IPC_LOCK"), std::string::npos) << msg;
    EXPECT_NE(msg.find("memlock"), std::string::npos) << msg;
}

TEST(rt, set_fifo_rejects_priorities_out_of_range) {
    EXPECT_THROW(io::rt::set_fifo(0), io::invalid_argument);
    EXPECT_THROW(io::rt::set_fifo(100), io::invalid_argument);
}

TEST(rt, set_fifo_and_back_when_permitted) {
    std::thread([] {
        try {
            io::rt::set_fifo(10);
        } catch (const std::system_error& e) {
            GTEST_SKIP() << "not permitted here: " << e.what();
        }
        EXPECT_EQ(io::rt::scheduling(), "SCHED_FIFO 10");
        io::rt::set_normal();
        EXPECT_EQ(io::rt::scheduling(), "SCHED_OTHER");
    }).join();
}

TEST(rt, pins_to_an_allowed_cpu_and_refuses_others) {
    std::thread([] {
        const auto cpus = io::rt::allowed_cpus();
        ASSERT_FALSE(cpus.empty());
        io::rt::pin_to_cpu(cpus.back());
        EXPECT_EQ(io::rt::thread_cpus(), std::vector<unsigned>{cpus.back()});
        EXPECT_EQ(io::rt::allowed_cpus(), cpus) << "the process's CPUs do not shrink with one thread's pinning";
        try {
            io::rt::pin_to_cpu(cpus.back() + 1000);
            ADD_FAILURE() << "pinning to a CPU outside the allowed set did not throw";
        } catch (const io::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find("allowed: "), std::string::npos) << e.what();
        }
        EXPECT_THROW(io::rt::pin_to_cpus({}), io::invalid_argument);
    }).join();
}

TEST(rt, a_thread_started_by_a_pinned_thread_may_move_to_another_cpu) {
    const auto cpus = io::rt::allowed_cpus();
    std::thread([&] {
        io::rt::pin_to_cpu(cpus.front());
        std::thread([&] {
            // Inherits {front}; the cpuset still allows every CPU of `cpus`.
            EXPECT_EQ(io::rt::thread_cpus(), std::vector<unsigned>{cpus.front()});
            io::rt::pin_to_cpu(cpus.back());
            EXPECT_EQ(io::rt::thread_cpus(), std::vector<unsigned>{cpus.back()});
            io::rt::pin_to_cpus(cpus);
            EXPECT_EQ(io::rt::thread_cpus(), cpus);
        }).join();
    }).join();
}

// Through libio's system-call seam: what the kernel would say in
// situations a test machine cannot produce on cue.

int fake_err = 0;
int calls = 0;

TEST(rt_faults, a_refused_affinity_says_which_cpus_are_allowed) {
    auto f = io::detail::real_sys();
    f.setaffinity = [](pthread_t, size_t, const cpu_set_t*) { return EINVAL; };
    io::detail::sys_override guard{f};
    try {
        io::rt::pin_to_cpu(io::rt::allowed_cpus().front());
        ADD_FAILURE() << "EINVAL from sched_setaffinity did not throw";
    } catch (const io::invalid_argument& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("refused by the kernel"), std::string::npos) << msg;
        EXPECT_NE(msg.find("allowed now: "), std::string::npos) << msg;
    }
}

TEST(rt_faults, set_fifo_refused_says_what_to_grant) {
    auto f = io::detail::real_sys();
    f.setschedparam = [](pthread_t, int, const sched_param*) { return EPERM; };
    io::detail::sys_override guard{f};
    try {
        io::rt::set_fifo(42);
        ADD_FAILURE() << "EPERM did not throw";
    } catch (const std::system_error& e) {
        const std::string msg = e.what();
        EXPECT_EQ(e.code().value(), EPERM);
        EXPECT_NE(msg.find("CAP_SYS_NICE"), std::string::npos) << msg;
        EXPECT_NE(msg.find("ulimit -r 42"), std::string::npos) << msg;
        EXPECT_NE(msg.find("LimitRTPRIO"), std::string::npos) << msg;
    }
    EXPECT_EQ(io::rt::scheduling(), "SCHED_OTHER") << "nothing changed";
}

TEST(rt_faults, lock_memory_refused_says_what_to_grant) {
    for (const int err : {EPERM, ENOMEM}) {
        fake_err = err;
        auto f = io::detail::real_sys();
        f.mlockall = [](int) {
            errno = fake_err;
            return -1;
        };
        io::detail::sys_override guard{f};
        try {
            io::rt::lock_memory();
            ADD_FAILURE() << "mlockall failing did not throw";
        } catch (const std::system_error& e) {
            const std::string msg = e.what();
            EXPECT_EQ(e.code().value(), err);
            EXPECT_NE(msg.find("CAP_IPC_LOCK"), std::string::npos) << msg;
            EXPECT_NE(msg.find("LimitMEMLOCK=infinity"), std::string::npos) << msg;
        }
    }
}

int held_fd = -1;

TEST(rt_faults, cpu_latency_limit_refused_says_what_to_grant) {
    auto f = io::detail::real_sys();
    f.open = [](const char*, int, mode_t) {
        errno = EACCES;
        return -1;
    };
    io::detail::sys_override guard{f};
    try {
        io::rt::cpu_latency_limit awake;
        ADD_FAILURE() << "EACCES did not throw";
    } catch (const std::system_error& e) {
        const std::string msg = e.what();
        EXPECT_EQ(e.code().value(), EACCES);
        EXPECT_NE(msg.find("run as root"), std::string::npos) << msg;
        EXPECT_NE(msg.find("KERNEL==\"cpu_dma_latency\""), std::string::npos) << msg;
    }
}

TEST(rt_faults, cpu_latency_limit_writes_a_binary_s32_and_closes_at_the_end) {
    auto f = io::detail::real_sys();
    f.open = [](const char* path, int, mode_t) {
        EXPECT_STREQ(path, "/dev/cpu_dma_latency");
        held_fd = ::memfd_create("pmqos", MFD_CLOEXEC);
        return held_fd;
    };
    f.close = [](int fd) {
        if (fd == held_fd)
            held_fd = -2;  // closed; the test reads the memfd through its dup
        return ::close(fd);
    };
    io::detail::sys_override guard{f};
    int copy = -1;
    {
        io::rt::cpu_latency_limit awake{250us};
        copy = ::dup(held_fd);
        std::int32_t v = 0;
        ASSERT_EQ(::pread(copy, &v, sizeof v, 0), static_cast<ssize_t>(sizeof v));
        EXPECT_EQ(v, 250);
        EXPECT_NE(held_fd, -2);
    }
    EXPECT_EQ(held_fd, -2) << "the limit is released when the object goes";
    ::close(copy);
}

TEST(rt_faults, the_periodic_timer_sleeps_on_through_signals) {
    // clock_nanosleep interrupted twice: wait() must go back to sleep to
    // the same absolute deadline, not return early.
    calls = 0;
    auto f = io::detail::real_sys();
    f.clock_nanosleep = [](clockid_t clock, int flags, const timespec* t, timespec* rem) {
        if (++calls <= 2)
            return EINTR;
        return ::clock_nanosleep(clock, flags, t, rem);
    };
    io::detail::sys_override guard{f};
    io::rt::periodic_timer tick{20ms};
    const auto deadline = tick.next_deadline();
    const auto late = tick.wait();
    EXPECT_EQ(calls, 3);
    EXPECT_GE(std::chrono::steady_clock::now(), deadline);
    EXPECT_GE(late.count(), 0);
    EXPECT_EQ(tick.cycles(), 1U);
    EXPECT_EQ(tick.next_deadline(), deadline + 20ms * (1 + static_cast<long>(tick.overruns())))
        << "the next deadline on the grid (a stall of the machine may skip some)";
}

// The aggregated PM QoS limit the kernel holds now, in us.
std::int32_t cpu_latency_now() {
    const int fd = ::open("/dev/cpu_dma_latency", O_RDONLY | O_CLOEXEC);
    std::int32_t v = -1;
    if (fd >= 0) {
        if (::read(fd, &v, sizeof v) != static_cast<ssize_t>(sizeof v))
            v = -1;
        ::close(fd);
    }
    return v;
}

TEST(rt, cpu_latency_limit_holds_while_it_lives_or_says_what_to_grant) {
    if (::access("/dev/cpu_dma_latency", W_OK) == 0) {
        const auto before = cpu_latency_now();
        {
            io::rt::cpu_latency_limit awake{7us};
            EXPECT_EQ(cpu_latency_now(), std::min<std::int32_t>(before, 7));
            auto moved = std::move(awake);
            EXPECT_EQ(moved.max(), 7us);
            EXPECT_EQ(cpu_latency_now(), std::min<std::int32_t>(before, 7)) << "a move keeps the limit";
        }
        EXPECT_EQ(cpu_latency_now(), before) << "released with the object";
    } else {
        try {
            io::rt::cpu_latency_limit awake;
            ADD_FAILURE() << "no write access, yet no error";
        } catch (const std::system_error& e) {
            EXPECT_NE(std::string(e.what()).find("/dev/cpu_dma_latency"), std::string::npos) << e.what();
        }
    }
    EXPECT_THROW(io::rt::cpu_latency_limit{-1us}, io::invalid_argument);
    EXPECT_THROW(io::rt::cpu_latency_limit{std::chrono::microseconds{1LL << 31}}, io::invalid_argument);
}

TEST(rt, prefault_stack_touches_without_crashing) {
    io::rt::prefault_stack(64 * 1024);
    SUCCEED();
}

}  // namespace
