// SPDX-License-Identifier: MIT
// Modbus/TCP on loopback: a read of 16 discrete inputs (function 02) of a
// simulated SeaI/O-410 (tests/native/seaio_sim.py on pymodbus) through
// libio's io::modbus_module against raw libmodbus in the same run, with
// heap allocations per read in steady state. The simulator's own turnaround
// is in both; the difference is libio's (its bus thread, the hand-over).
#include "bench_common.hpp"

#include <io/modbus.hpp>

#include <modbus.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

// seaio_sim.py serving unit 1 as a 410 on 127.0.0.1; ends with its input.
class simulator {
public:
    simulator() {
        int in[2];
        int out[2];
        if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0)
            throw std::system_error(errno, std::system_category(), "pipe");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        std::string script = SEAIO_SIM, tcp = "--tcp", spec = "1:410";
        char* argv[] = {script.data(), tcp.data(), spec.data(), nullptr};
        const int rc = ::posix_spawn(&pid_, argv[0], &fa, nullptr, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        ::close(in[0]);
        ::close(out[1]);
        to_ = in[1];
        if (rc != 0) {
            ::close(out[0]);
            throw std::system_error(rc, std::system_category(), "spawn " + script);
        }
        std::FILE* f = ::fdopen(out[0], "r");
        if (f == nullptr || std::fscanf(f, "ready %d", &port_) != 1)
            port_ = 0;
        if (f != nullptr)
            std::fclose(f);
    }
    ~simulator() {
        ::close(to_);
        ::kill(pid_, SIGTERM);
        int st = 0;
        ::waitpid(pid_, &st, 0);
    }
    simulator(const simulator&) = delete;
    simulator& operator=(const simulator&) = delete;
    int port() const noexcept { return port_; }

private:
    pid_t pid_ = -1;
    int to_ = -1;
    int port_ = 0;
};

simulator& sim() {
    static simulator s;
    return s;
}

void read_raw(benchmark::State& state) {
    if (sim().port() == 0) {
        state.SkipWithError("the simulator did not start");
        return;
    }
    const std::unique_ptr<modbus_t, void (*)(modbus_t*)> ctx{
        modbus_new_tcp("127.0.0.1", sim().port()), [](modbus_t* c) {
            modbus_close(c);
            modbus_free(c);
        }};
    if (!ctx || modbus_connect(ctx.get()) != 0) {
        state.SkipWithError("libmodbus could not connect");
        return;
    }
    modbus_set_slave(ctx.get(), 1);
    modbus_set_response_timeout(ctx.get(), 2, 0);
    std::uint8_t bits[16];
    bench::time_each(state, [&] { return modbus_read_input_bits(ctx.get(), 0, 16, bits) == 16; }, "read of DI failed");
}

void read_libio(benchmark::State& state) {
    if (sim().port() == 0) {
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

}  // namespace

int main(int argc, char** argv) {
    bench::add("modbus_tcp_read_di16/raw_libmodbus", read_raw)->UseManualTime();
    bench::add("modbus_tcp_read_di16/libio", read_libio)->UseManualTime();
    return bench::run_main(argc, argv);
}
