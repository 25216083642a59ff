// SPDX-License-Identifier: MIT
// A periodic loop on io::rt, measured the way cyclictest measures its own:
// SCHED_FIFO, memory locked, pinned, CPUs kept out of deep idle states
// (/dev/cpu_dma_latency at 0), absolute deadlines, the wake-up latency
// of every cycle in a histogram. bench/run-periodic runs it alternately with
// cyclictest, idle and under stress-ng, and the report compares the two.
// With --loop=event the same loop runs on io::event_loop::call_every (a
// timerfd on absolute deadlines, woken through epoll), as an application
// built on the event loop would run it.
//
//   bench_periodic --loops=N --interval-us=1000 --priority=80 --cpu=0 [--loop=rt|event] --json=FILE
#include "hist_json.hpp"

#include <io/event_loop.hpp>
#include <io/rt.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <system_error>

namespace {

long arg(int argc, char** argv, const char* name, long def) {
    const std::size_t len = std::strlen(name);
    for (int i = 1; i < argc; ++i)
        if (std::strncmp(argv[i], name, len) == 0 && argv[i][len] == '=')
            return std::strtol(argv[i] + len + 1, nullptr, 10);
    return def;
}

const char* sarg(int argc, char** argv, const char* name) {
    const std::size_t len = std::strlen(name);
    for (int i = 1; i < argc; ++i)
        if (std::strncmp(argv[i], name, len) == 0 && argv[i][len] == '=')
            return argv[i] + len + 1;
    return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
    const long loops = arg(argc, argv, "--loops", 10000);
    const long interval = arg(argc, argv, "--interval-us", 1000);
    const long prio = arg(argc, argv, "--priority", 80);
    const long cpu = arg(argc, argv, "--cpu", -1);
    const char* json = sarg(argc, argv, "--json");
    const std::string mode = sarg(argc, argv, "--loop") ? sarg(argc, argv, "--loop") : "rt";
    if (loops <= 0 || interval <= 0 || (mode != "rt" && mode != "event")) {
        std::fprintf(stderr, "bench_periodic: --loops and --interval-us must be positive, --loop rt or event\n");
        return 2;
    }

    std::string sched = "SCHED_OTHER", notes;
    try {
        io::rt::lock_memory();
    } catch (const std::system_error& e) {
        notes += std::string(e.what()) + "; ";
    }
    // cyclictest holds /dev/cpu_dma_latency at 0 while it runs; so does this.
    std::optional<io::rt::cpu_latency_limit> awake;
    try {
        awake.emplace(std::chrono::microseconds{0});
    } catch (const std::system_error& e) {
        notes += std::string(e.what()) + "; ";
    }
    if (cpu >= 0)
        io::rt::pin_to_cpu(static_cast<unsigned>(cpu));
    if (prio > 0) {
        try {
            io::rt::set_fifo(static_cast<int>(prio));
        } catch (const std::system_error& e) {
            notes += std::string(e.what()) + "; ";
        }
    }
    sched = io::rt::scheduling();
    io::rt::prefault_stack();

    io::rt::latency_histogram h;
    std::uint64_t overruns = 0;
    const std::chrono::nanoseconds period = std::chrono::microseconds{interval};
    if (mode == "rt") {
        io::rt::periodic_timer t{period};
        for (long i = 0; i < loops; ++i)
            h.record(t.wait());
        overruns = t.overruns();
    } else {
        // Deadlines at first + k * period; a tick more than a period late
        // means deadlines went by unserved (the loop does not replay them).
        io::event_loop loop;
        using clock = std::chrono::steady_clock;
        const auto first = clock::now() + period;
        std::int64_t k = 0;  // the deadline the next tick serves
        long n = 0;
        auto tick = loop.call_every(period, first, [&] {
            // Lateness against the deadline this tick serves (the first not
            // yet served), as cyclictest and periodic_timer count it; the
            // deadlines that went by meanwhile are overruns.
            const auto now = clock::now();
            const auto due = std::max<std::int64_t>((now - first) / period, k);  // last deadline passed
            h.record(now - (first + k * period));
            overruns += static_cast<std::uint64_t>(due - k);
            k = due + 1;
            if (++n == loops)
                loop.stop();
        });
        loop.run();
    }

    const auto s = h.summarize();
    std::printf("%s periodic %ld us x %ld (%s, cpu %ld, cpu latency limit %s): min %lld p50 %lld p99 %lld p99.9 %lld max %lld ns, "
                "overruns %llu\n",
                mode == "rt" ? "io::rt" : "io::event_loop", interval, loops, sched.c_str(), cpu,
                awake ? "0 us" : "none", static_cast<long long>(s.min), static_cast<long long>(s.p50), static_cast<long long>(s.p99),
                static_cast<long long>(s.p999), static_cast<long long>(s.max),
                static_cast<unsigned long long>(overruns));
    if (!notes.empty())
        std::printf("note: %s\n", notes.c_str());
    if (json != nullptr) {
        std::FILE* f = std::fopen(json, "w");
        if (f == nullptr) {
            std::perror(json);
            return 1;
        }
        std::fprintf(f,
                     "{\"tool\": \"%s\", \"interval_us\": %ld, \"loops\": %ld, \"scheduling\": \"%s\", "
                     "\"cpu_latency_limit\": \"%s\", \"cpu\": %ld, \"overruns\": %llu, ",
                     mode == "rt" ? "io::rt" : "io::event_loop", interval, loops, sched.c_str(),
                     awake ? "0 us" : "none", cpu, static_cast<unsigned long long>(overruns));
        bench::write_histogram_members(f, h);
        std::fprintf(f, "}\n");
        std::fclose(f);
    }
    if (s.n != static_cast<unsigned long long>(loops)) {
        std::fprintf(stderr, "bench_periodic: %llu samples recorded of %ld\n", static_cast<unsigned long long>(s.n), loops);
        return 1;
    }
    return 0;
}
