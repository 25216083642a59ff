// SPDX-License-Identifier: MIT
// A scan cycle as a PLC runs one: every period, read an input port, compute,
// write an output port. The thread runs on io::rt: memory locked, SCHED_FIFO,
// pinned to one CPU, CPUs kept out of deep idle states, woken on absolute
// deadlines; how late each wake-up came
// and how long each cycle took go into histograms, printed at the end.
//
//   cycle CARD IN OUT [--period-us N] [--cycles N] [--cpu N] [--priority N]
//   e.g. cycle cos32 IN OUT --cycles 5000
//
// The "program" here copies IN to OUT and counts the cycles in which IN
// changed. Without the privileges for real-time (CAP_SYS_NICE, CAP_IPC_LOCK
// or the rtprio/memlock limits, write access to /dev/cpu_dma_latency) it
// says what is missing and runs anyway.
#include <io/io.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>

namespace {

volatile std::sig_atomic_t stop = 0;

void on_signal(int) {
    stop = 1;
}

// The value of --name, or def; an unknown option or a value that is not a
// whole number in [lo, hi] is an error that says what is allowed.
long option(int argc, char** argv, const char* name, long def, long lo, long hi) {
    static const char* const known[] = {"--period-us", "--cycles", "--cpu", "--priority"};
    for (int i = 4; i + 1 < argc; i += 2) {
        if (std::find_if(std::begin(known), std::end(known), [&](const char* k) {
                return std::strcmp(argv[i], k) == 0;
            }) == std::end(known))
            throw std::invalid_argument(std::string("unknown option ") + argv[i] +
                                        " (options: --period-us, --cycles, --cpu, --priority)");
        if (std::strcmp(argv[i], name) != 0)
            continue;
        char* end = nullptr;
        errno = 0;
        const long v = std::strtol(argv[i + 1], &end, 10);
        if (errno != 0 || end == argv[i + 1] || *end != '\0' || v < lo || v > hi)
            throw std::invalid_argument(std::string(name) + " wants a whole number from " + std::to_string(lo) +
                                        " to " + std::to_string(hi) + ", not '" + argv[i + 1] + "'");
        return v;
    }
    return def;
}

void print(const char* what, const io::rt::latency_histogram& h) {
    const auto s = h.summarize();
    const auto us = [](std::int64_t ns) { return static_cast<double>(ns) / 1e3; };
    std::printf("  %-8s p50 %8.1f  p99 %8.1f  p99.9 %8.1f  max %8.1f us\n", what, us(s.p50), us(s.p99), us(s.p999),
                us(s.max));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4 || (argc - 4) % 2 != 0) {
        std::cerr << "usage: cycle CARD IN OUT [--period-us N] [--cycles N] [--cpu N] [--priority N]\n";
        return 2;
    }
    try {
        const auto period = std::chrono::microseconds{option(argc, argv, "--period-us", 1000, 10, 10'000'000)};
        const long cycles = option(argc, argv, "--cycles", 0, 0, 1'000'000'000);  // 0: until Ctrl-C
        const long cpu = option(argc, argv, "--cpu", -1, 0, 4095);
        const int priority = static_cast<int>(option(argc, argv, "--priority", 80, 1, 99));

        const auto card = io::find_card(argv[1]);
        io::chip chip{card.gpiochip};
        const auto in_port = chip.find_port(argv[2]);
        const auto out_port = chip.find_port(argv[3]);
        auto in = chip.prepare_request().consumer("cycle").add(in_port, io::line_config::input()).make();
        auto out = chip.prepare_request().consumer("cycle").add(out_port, io::line_config::output()).make();

        // Real-time set-up, before the loop: every step that is refused says
        // what to grant, and the loop runs without it.
        try {
            io::rt::lock_memory();
        } catch (const std::system_error& e) {
            std::cerr << "cycle: running with memory unlocked: " << e.what() << "\n";
        }
        std::optional<io::rt::cpu_latency_limit> awake;  // no deep C-states while the loop runs
        try {
            awake.emplace();
        } catch (const std::system_error& e) {
            std::cerr << "cycle: running with CPU idle states unlimited: " << e.what() << "\n";
        }
        if (cpu >= 0)
            io::rt::pin_to_cpu(static_cast<unsigned>(cpu));
        try {
            io::rt::set_fifo(priority);
        } catch (const std::system_error& e) {
            std::cerr << "cycle: running under SCHED_OTHER: " << e.what() << "\n";
        }
        io::rt::prefault_stack();
        std::signal(SIGINT, on_signal);
        std::signal(SIGTERM, on_signal);

        io::rt::latency_histogram wake, body;  // no allocation when recording
        std::uint64_t last = in.read_port(in_port), changes = 0;
        std::printf("running: %s -> %s every %lld us on %s\n", argv[2], argv[3],
                    static_cast<long long>(period.count()), card.name.c_str());
        std::fflush(stdout);
        io::rt::periodic_timer tick{period};
        long n = 0;
        while (stop == 0 && (cycles == 0 || n < cycles)) {
            wake.record(tick.wait());
            const auto t0 = std::chrono::steady_clock::now();
            const auto now = in.read_port(in_port);
            changes += now != last;
            last = now;
            out.write_port(out_port, now);
            body.record(std::chrono::steady_clock::now() - t0);
            ++n;
        }
        std::printf("%ld cycles of %lld us on %s (%s), %s, %llu overruns, input changed in %llu cycles\n", n,
                    static_cast<long long>(period.count()), card.name.c_str(), card.model.c_str(),
                    io::rt::scheduling().c_str(), static_cast<unsigned long long>(tick.overruns()),
                    static_cast<unsigned long long>(changes));
        print("wake-up", wake);
        print("cycle", body);
    } catch (const std::exception& e) {
        std::cerr << "cycle: " << e.what() << "\n";
        return 1;
    }
}
