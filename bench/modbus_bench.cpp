// SPDX-License-Identifier: MIT
// A read of 16 discrete inputs (function 02) of a simulated SeaI/O-410
// (tests/native/seaio_sim.py on pymodbus) through libio's io::modbus_module
// against raw libmodbus in the same run, with heap allocations per read in
// steady state: Modbus/TCP on loopback, and Modbus RTU at 9600 and 115200
// baud over a socat pty pair. The simulator's own turnaround is in both; the
// difference is libio's (the hand-over, and on RTU the frame gaps it keeps).
// The RTU cases also give the wire time of a poll, the simulator's measured
// turnaround and the ratio of the poll to their sum; the simulator paces the
// pty at the baud rate (bench/README.md).
#include "bench_common.hpp"
#include "modbus_client.hpp"

#include <io/modbus.hpp>

#include <modbus.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <memory>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace {

// seaio_sim.py serving unit 1 as a 410 (Modbus/TCP on 127.0.0.1, or RTU on
// the serial device `rtu`, paced at `pace` baud when not 0); takes commands
// on its input, ends with it.
class simulator {
public:
    explicit simulator(const std::string& rtu = "", unsigned pace = 0) {
        int in[2];
        int out[2];
        if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0)
            throw std::system_error(errno, std::system_category(), "pipe");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        std::string script = SEAIO_SIM, mode = rtu.empty() ? "--tcp" : "--rtu", dev = rtu, spec = "1:410",
                    pace_opt = "--pace", baud = std::to_string(pace);
        std::vector<char*> argv{script.data(), mode.data()};
        if (!rtu.empty())
            argv.push_back(dev.data());
        if (pace != 0) {
            argv.push_back(pace_opt.data());
            argv.push_back(baud.data());
        }
        argv.push_back(spec.data());
        argv.push_back(nullptr);
        const int rc = ::posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        ::close(in[0]);
        ::close(out[1]);
        to_ = in[1];
        from_ = ::fdopen(out[0], "r");
        if (rc != 0 || from_ == nullptr)
            throw std::system_error(rc, std::system_category(), "spawn " + script);
        const auto ready = answer();
        if (ready.starts_with("ready")) {
            ready_ = true;
            if (ready.size() > 6)
                port_ = std::stoi(ready.substr(6));
        }
    }
    ~simulator() {
        ::close(to_);
        ::kill(pid_, SIGTERM);
        int st = 0;
        ::waitpid(pid_, &st, 0);
        std::fclose(from_);
    }
    simulator(const simulator&) = delete;
    simulator& operator=(const simulator&) = delete;
    bool ready() const noexcept { return ready_; }
    int port() const noexcept { return port_; }

    /// One command and its answer.
    std::string cmd(const std::string& c) {
        const std::string line = c + "\n";
        if (::write(to_, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
            return {};
        return answer();
    }

private:
    std::string answer() {
        char buf[256];
        if (std::fgets(buf, sizeof buf, from_) == nullptr)
            return {};
        std::string s = buf;
        if (!s.empty() && s.back() == '\n')
            s.pop_back();
        return s;
    }
    pid_t pid_ = -1;
    int to_ = -1;
    std::FILE* from_ = nullptr;
    bool ready_ = false;
    int port_ = 0;
};

simulator& sim() {
    static simulator s;
    return s;
}

void read_raw(benchmark::State& state) {
    if (!sim().ready()) {
        state.SkipWithError("the simulator did not start");
        return;
    }
    const auto ctx = bench::raw_modbus_client(state, modbus_new_tcp("127.0.0.1", sim().port()), "libmodbus could not connect");
    if (!ctx)
        return;
    std::uint8_t bits[16];
    bench::time_each(state, [&] { return modbus_read_input_bits(ctx.get(), 0, 16, bits) == 16; }, "read of DI failed");
}

void read_libio(benchmark::State& state) {
    if (!sim().ready()) {
        state.SkipWithError("the simulator did not start");
        return;
    }
    io::modbus_module m("modbus-tcp://127.0.0.1:" + std::to_string(sim().port()) + "?unit=1&model=410&timeout=2000");
    bench::time_each(
        state,
        [&] {
            try {
                benchmark::DoNotOptimize(m.read_port("DI"));
                return true;
            } catch (const std::system_error&) {
                return false;
            }
        },
        "read of DI failed");
}


// Two ptys joined by socat (links a and b in a directory of their own): the
// code under test on a, the simulator on b.
class pty_pair {
public:
    pty_pair() {
        char dir[] = "/tmp/libio-bench-modbus-XXXXXX";
        if (::mkdtemp(dir) == nullptr)
            throw std::system_error(errno, std::system_category(), "mkdtemp");
        dir_ = dir;
        int err[2];
        if (::pipe2(err, O_CLOEXEC) != 0)
            throw std::system_error(errno, std::system_category(), "pipe");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, err[1], 2);
        std::string socat = "/usr/bin/socat", d = "-d", a = "pty,raw,echo=0,link=" + this->a(),
                    b = "pty,raw,echo=0,link=" + this->b();
        char* argv[] = {socat.data(), d.data(), d.data(), a.data(), b.data(), nullptr};
        const int rc = ::posix_spawn(&pid_, argv[0], &fa, nullptr, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        ::close(err[1]);
        std::FILE* f = ::fdopen(err[0], "r");
        if (rc != 0 || f == nullptr)
            throw std::system_error(rc, std::system_category(), "spawn " + socat);
        char line[512];
        while (std::fgets(line, sizeof line, f) != nullptr)
            if (std::strstr(line, "starting data transfer loop") != nullptr) {
                ready_ = true;
                break;
            }
        // socat's later messages go to a pipe nobody reads: -d -d says
        // nothing more unless a side closes, and then it ends anyway.
        std::fclose(f);
    }
    ~pty_pair() {
        ::kill(pid_, SIGTERM);
        int st = 0;
        ::waitpid(pid_, &st, 0);
        ::rmdir(dir_.c_str());
    }
    pty_pair(const pty_pair&) = delete;
    pty_pair& operator=(const pty_pair&) = delete;
    bool ready() const noexcept { return ready_; }
    std::string a() const { return dir_ + "/a"; }
    std::string b() const { return dir_ + "/b"; }

private:
    std::string dir_;
    pid_t pid_ = -1;
    bool ready_ = false;
};

// A simulated 410 on the far end of a pty pair, one per baud rate. A pty
// moves bytes at no rate at all: the simulator paces it (--pace), handling
// a request once its last character would have arrived at that rate and
// writing a reply once its last character would have left.
struct rtu_line {
    explicit rtu_line(unsigned baud) : module{ptys.b(), baud} {}
    pty_pair ptys;
    simulator module;
};

rtu_line& line_at(unsigned baud) {
    static std::map<unsigned, std::unique_ptr<rtu_line>> lines;
    auto& l = lines[baud];
    if (!l)
        l = std::make_unique<rtu_line>(baud);
    return *l;
}

// The time one poll of a 16-input module needs on the line (8N1, 10 bits a
// character): the request (function 02: unit, function, address, count,
// CRC: 8 characters) and the reply (unit, function, byte count, 2 data
// bytes, CRC: 7 characters), and the master's 3.5-character silence before
// its request (1.75 ms above 19200 baud; Modbus over serial line V1.02,
// 2.5.1.1). The module's silence before its reply is in its turnaround.
double wire_ns(unsigned baud) {
    const double bit = 1e9 / baud;
    const double gap = baud > 19200 ? 1.75e6 : 35 * bit;
    return (8 + 7) * 10 * bit + gap;
}

// The poll timed by time_each, then the budget of the target: wire
// time plus the simulator's turnaround measured over the same polls.
// keeps_gap: the implementation waits the master's frame gap (libio does,
// raw libmodbus does not).
template <typename Poll>
void rtu_case(benchmark::State& state, unsigned baud, bool keeps_gap, Poll&& poll) {
    auto& line = line_at(baud);
    (void)line.module.cmd("turnaround");  // forget the turnarounds of earlier runs
    bench::time_each(state, poll, "read of DI failed");
    const auto ta = line.module.cmd("turnaround");  // turnaround N P50_US P99_US MAX_US
    unsigned long n = 0;
    double ta50 = 0, ta99 = 0, tamax = 0;
    if (std::sscanf(ta.c_str(), "turnaround %lu %lf %lf %lf", &n, &ta50, &ta99, &tamax) != 4 || n == 0) {
        state.SkipWithError(("the simulator gave no turnaround: '" + ta + "'").c_str());
        return;
    }
    const double wire = wire_ns(baud);
    state.counters["wire_us"] = wire / 1e3;
    state.counters["turnaround_p50_us"] = ta50;
    state.counters["turnaround_p99_us"] = ta99;
    // What the poll took beyond the frames' bit time, the frame gap it waits
    // and the turnaround: the implementation's own time.
    const double frames = (8 + 7) * 10 * 1e9 / baud;
    const double waited = keeps_gap ? wire : frames;
    state.counters["excess_p50_us"] = (state.counters["p50"] - waited) / 1e3 - ta50;
    state.counters["ratio_p50"] = state.counters["p50"] / (wire + ta50 * 1e3);
    state.counters["ratio_p99"] = state.counters["p99"] / (wire + ta99 * 1e3);
}

template <unsigned Baud>
void rtu_raw(benchmark::State& state) {
    auto& line = line_at(Baud);
    if (!line.ptys.ready() || !line.module.ready()) {
        state.SkipWithError("the pty pair or the simulator did not start");
        return;
    }
    const auto ctx = bench::raw_modbus_client(
        state, modbus_new_rtu(line.ptys.a().c_str(), static_cast<int>(Baud), 'N', 8, 1), "libmodbus could not open the pty");
    if (!ctx)
        return;
    std::uint8_t bits[16];
    rtu_case(state, Baud, false, [&] { return modbus_read_input_bits(ctx.get(), 0, 16, bits) == 16; });
}

template <unsigned Baud>
void rtu_libio(benchmark::State& state) {
    auto& line = line_at(Baud);
    if (!line.ptys.ready() || !line.module.ready()) {
        state.SkipWithError("the pty pair or the simulator did not start");
        return;
    }
    io::modbus_module m("modbus-rtu:" + line.ptys.a() + "?baud=" + std::to_string(Baud) +
                        "&unit=1&model=410&timeout=2000");
    rtu_case(state, Baud, true, [&] {
        try {
            benchmark::DoNotOptimize(m.read_port("DI"));
            return true;
        } catch (const std::system_error&) {
            return false;
        }
    });
}

}  // namespace

int main(int argc, char** argv) {
    bench::add("modbus_tcp_read_di16/raw_libmodbus", read_raw)->UseManualTime();
    bench::add("modbus_tcp_read_di16/libio", read_libio)->UseManualTime();
    bench::add("modbus_rtu_read_di16_9600/raw_libmodbus", rtu_raw<9600>)->UseManualTime();
    bench::add("modbus_rtu_read_di16_9600/libio", rtu_libio<9600>)->UseManualTime();
    bench::add("modbus_rtu_read_di16_115200/raw_libmodbus", rtu_raw<115200>)->UseManualTime();
    bench::add("modbus_rtu_read_di16_115200/libio", rtu_libio<115200>)->UseManualTime();
    return bench::run_main(argc, argv);
}
