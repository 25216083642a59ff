// SPDX-License-Identifier: MIT
// A short run of every benchmark that needs the test VM (bench/), so that
// none of them rots between `make bench` runs: each must exit 0 and print
// its results. The numbers of so short a run mean nothing.
#include "emulated_serial.hpp"
#include "vm_test.hpp"

#include <array>
#include <cstdio>
#include <string>
#include <sys/wait.h>

namespace {

struct result {
    int status;
    std::string out;
};

result run(const std::string& cmd) {
    result r{-1, {}};
    std::FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    if (p == nullptr)
        return r;
    std::array<char, 4096> buf;
    for (std::size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;)
        r.out.append(buf.data(), n);
    const int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    return r;
}

class bench_smoke : public io::test::vm_test {};

TEST_F(bench_smoke, gpio_cases_run_and_report) {
    const auto r = run(std::string("LIBIO_BENCH_SMOKE=1 ") + BENCH_GPIO +
                       " --benchmark_min_time=0.01 --benchmark_format=json");
    ASSERT_EQ(r.status, 0) << r.out;
    for (const char* name : {"floor/null_ioctl", "get/raw_ioctl", "get/libio", "get/gpiod_cxx", "get/gpiod_c",
                             "set/libio", "port_read/libio", "port_write/libio", "edge_latency/raw_poll_read",
                             "edge_latency/libio_wait", "edge_latency/libio_event_loop", "event_throughput/libio",
                             "event_rate/libio", "event_overflow/libio", "paired/get", "paired/set", "paired/port_read",
                             "paired/port_write", "paired/edge_latency"})
        EXPECT_NE(r.out.find(std::string("\"name\": \"") + name), std::string::npos) << name << " missing:\n" << r.out;
    EXPECT_EQ(r.out.find("\"error_occurred\": true"), std::string::npos) << r.out;
}

TEST_F(bench_smoke, serial_cases_run_over_the_uart_loopback) {
    const auto tty = io::test::tty_of("uart3");
    ASSERT_FALSE(tty.empty()) << "the VM has no pci-serial-4x (vm.py --serial)";
    const auto r = run("LIBIO_BENCH_UART=" + tty + " " + BENCH_SERIAL + " --benchmark_min_time=0.01 --benchmark_format=json");
    ASSERT_EQ(r.status, 0) << r.out;
    for (const char* name : {"serial_rtt_uart/raw_termios", "serial_rtt_uart/libio", "serial_bulk_uart/raw_termios",
                             "serial_bulk_uart/libio"})
        EXPECT_NE(r.out.find(std::string("\"name\": \"") + name), std::string::npos) << name << " missing:\n" << r.out;
    EXPECT_EQ(r.out.find("\"error_occurred\": true"), std::string::npos) << r.out;
}

TEST_F(bench_smoke, periodic_loops_run_and_report) {
    for (const char* mode : {"rt", "event"}) {
        const auto r = run(std::string(BENCH_PERIODIC) + " --loops=100 --interval-us=1000 --priority=80 --cpu=0 --loop=" +
                           mode);
        ASSERT_EQ(r.status, 0) << r.out;
        EXPECT_NE(r.out.find(std::string(mode) == "rt" ? "io::rt periodic" : "io::event_loop periodic"),
                  std::string::npos) << r.out;
        EXPECT_NE(r.out.find("SCHED_FIFO 80"), std::string::npos) << "root in the VM may use SCHED_FIFO:\n" << r.out;
    }
}

#ifdef GATE_BENCH
TEST_F(bench_smoke, gateway_cases_run_and_report) {
    const std::string out = "/tmp/bench_smoke_gate.json";
    const auto r = run(std::string(GATE_BENCH) + " " + BUILD_DIR + " " + out + " --short");
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("edge to subscriber p50"), std::string::npos) << r.out;
    const auto json = run("cat " + out);
    for (const char* key : {"\"edge_to_subscriber\"", "\"mqtt_publish_to_subscriber\"", "\"rows\"", "\"VmHWM\"",
                            "\"births_s\""})
        EXPECT_NE(json.out.find(key), std::string::npos) << key << " missing:\n" << json.out;
}
#endif

}  // namespace
