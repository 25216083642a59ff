// SPDX-License-Identifier: MIT
// A periodic loop on io::rt, measured the way cyclictest measures its own:
// SCHED_FIFO, memory locked, pinned, absolute deadlines, the wake-up latency
// of every cycle in a histogram. bench/run-periodic runs it alternately with
// cyclictest, idle and under stress-ng, and the report compares the two.
//
//   bench_periodic --loops=N --interval-us=1000 --priority=80 --cpu=0 --json=FILE
#include <io/rt.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
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

    std::string sched = "SCHED_OTHER", notes;
    try {
        io::rt::lock_memory();
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
    io::rt::periodic_timer t{std::chrono::microseconds{interval}};
    for (long i = 0; i < loops; ++i)
        h.record(t.wait());

    const auto s = h.summarize();
    std::printf("io::rt periodic %ld us x %ld (%s, cpu %ld): min %lld p50 %lld p99 %lld p99.9 %lld max %lld ns, "
                "overruns %llu\n",
                interval, loops, sched.c_str(), cpu, static_cast<long long>(s.min), static_cast<long long>(s.p50),
                static_cast<long long>(s.p99), static_cast<long long>(s.p999), static_cast<long long>(s.max),
                static_cast<unsigned long long>(t.overruns()));
    if (!notes.empty())
        std::printf("note: %s\n", notes.c_str());
    if (json != nullptr) {
        std::FILE* f = std::fopen(json, "w");
        if (f == nullptr) {
            std::perror(json);
            return 1;
        }
        std::fprintf(f,
                     "{\"tool\": \"io::rt\", \"interval_us\": %ld, \"loops\": %ld, \"scheduling\": \"%s\", "
                     "\"cpu\": %ld, \"overruns\": %llu, \"n\": %llu, \"min\": %lld, \"p50\": %lld, \"p90\": %lld, "
                     "\"p99\": %lld, \"p999\": %lld, \"max\": %lld, \"mean\": %.1f, \"buckets\": [",
                     interval, loops, sched.c_str(), cpu, static_cast<unsigned long long>(t.overruns()),
                     static_cast<unsigned long long>(s.n), static_cast<long long>(s.min),
                     static_cast<long long>(s.p50), static_cast<long long>(s.p90), static_cast<long long>(s.p99),
                     static_cast<long long>(s.p999), static_cast<long long>(s.max), s.mean);
        bool first = true;
        for (const auto& b : h.buckets()) {
            std::fprintf(f, "%s[%lld, %lld, %llu]", first ? "" : ", ", static_cast<long long>(b.lower),
                         static_cast<long long>(b.upper), static_cast<unsigned long long>(b.count));
            first = false;
        }
        std::fprintf(f, "]}\n");
        std::fclose(f);
    }
    return s.n == static_cast<unsigned long long>(loops) ? 0 : 1;
}
