// SPDX-License-Identifier: MIT
// What every benchmark binary shares: counting heap allocations, recording
// per-sample latencies into io::rt histograms and handing them to Google
// Benchmark (as counters) and to the report (as a JSON file per case).
#pragma once

#include "hist_json.hpp"

#include <io/rt.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <string>

namespace bench {

/// Heap allocations made by the process so far (malloc, calloc, realloc;
/// operator new goes through malloc). Defined in alloc_counter.cpp.
std::uint64_t allocations() noexcept;

/// CLOCK_MONOTONIC in ns, from the vDSO (TSC clocksource in the VM).
inline std::int64_t now_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

/// The histograms of every case, merged over its repetitions, written at
/// exit to $LIBIO_BENCH_HIST (one JSON object, case name -> buckets).
inline std::map<std::string, io::rt::latency_histogram>& all_histograms() {
    static std::map<std::string, io::rt::latency_histogram> h;
    return h;
}

/// The case running now (Google Benchmark 1.7's State does not know it).
inline std::string& current_case() {
    static std::string name;
    return name;
}

/// Registers fn as the case `name`; every case is registered through this.
inline benchmark::internal::Benchmark* add(const std::string& name, void (*fn)(benchmark::State&)) {
    return benchmark::RegisterBenchmark(name.c_str(), [name, fn](benchmark::State& s) {
        current_case() = name;
        fn(s);
    });
}

/// Puts n, p50, p90, p99, p99.9 and max (ns) of one repetition in the
/// state's counters, and merges it into the case's histogram for the report.
inline void publish(benchmark::State& state, const io::rt::latency_histogram& h, const std::string& suffix = "") {
    const auto s = h.summarize();
    state.counters["n" + suffix] = static_cast<double>(s.n);
    state.counters["min" + suffix] = static_cast<double>(s.min);
    state.counters["p50" + suffix] = static_cast<double>(s.p50);
    state.counters["p90" + suffix] = static_cast<double>(s.p90);
    state.counters["p99" + suffix] = static_cast<double>(s.p99);
    state.counters["p999" + suffix] = static_cast<double>(s.p999);
    state.counters["max" + suffix] = static_cast<double>(s.max);
    all_histograms()[current_case() + suffix].merge(h);
}

/// The benchmark loop of a case that times each call alone (manual time):
/// one() once per iteration, its time recorded and published; heap
/// allocations counted after the first 16 calls (lazy set-up) and given per
/// call as the counter `allocs_counter`. A call that returns false ends the
/// case with the error `failure`.
template <typename One>
void time_each(benchmark::State& state, One&& one, const char* failure, const char* allocs_counter = "allocs_per_read") {
    io::rt::latency_histogram h;
    std::int64_t n = 0;
    std::uint64_t allocs = 0;
    for (auto _ : state) {
        const auto a0 = allocations();
        const auto t0 = now_ns();
        if (!one()) {
            state.SkipWithError(failure);
            break;
        }
        const auto t1 = now_ns();
        state.SetIterationTime(static_cast<double>(t1 - t0) * 1e-9);
        h.record_ns(t1 - t0);
        if (++n > 16)
            allocs += allocations() - a0;
    }
    state.counters[allocs_counter] = n > 16 ? static_cast<double>(allocs) / static_cast<double>(n - 16) : 0.0;
    publish(state, h);
}

/// Writes all_histograms() to $LIBIO_BENCH_HIST, if set.
inline void write_histograms() {
    const char* path = std::getenv("LIBIO_BENCH_HIST");
    if (path == nullptr || all_histograms().empty())
        return;
    std::FILE* f = std::fopen(path, "w");
    if (f == nullptr) {
        std::perror(path);
        return;
    }
    std::fprintf(f, "{");
    bool first = true;
    for (const auto& [name, h] : all_histograms()) {
        std::fprintf(f, "%s\n  \"%s\": {", first ? "" : ",", name.c_str());
        write_histogram_members(f, h);
        std::fprintf(f, "}");
        first = false;
    }
    std::fprintf(f, "\n}\n");
    std::fclose(f);
}

/// main() of a benchmark binary: pins the thread when $LIBIO_BENCH_CPU is
/// set, runs the cases, writes the histograms.
inline int run_main(int argc, char** argv) {
    if (const char* cpu = std::getenv("LIBIO_BENCH_CPU"))
        io::rt::pin_to_cpu(static_cast<unsigned>(std::atoi(cpu)));
    if (const char* prio = std::getenv("LIBIO_BENCH_FIFO"))
        io::rt::set_fifo(std::atoi(prio));
    benchmark::AddCustomContext("scheduling", io::rt::scheduling());
    benchmark::AddCustomContext("pinned_cpu", std::getenv("LIBIO_BENCH_CPU") ? std::getenv("LIBIO_BENCH_CPU") : "none");
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    write_histograms();
    return 0;
}

}  // namespace bench
