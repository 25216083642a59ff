// SPDX-License-Identifier: MIT
// Serial ports: one-byte round trip and bulk throughput through libio's
// serial_port against raw termios read/write on the same kind of tty.
//
// Natively (no arguments) the tty is a pty: the bench holds the master as
// the far end of the cable. In the test VM, bench/run-vm passes
// --port=/dev/ttySx and the far end is the cable agent's echo (cable.hpp);
// that part is not wired up yet (see bench/README.md).
#include "bench_common.hpp"

#include <io/serial_port.hpp>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;

struct pty {
    int master = -1;
    std::string slave;
    pty() {
        master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
        if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0)
            throw std::system_error(errno, std::system_category(), "posix_openpt");
        slave = ::ptsname(master);
        termios t{};
        ::tcgetattr(master, &t);
        ::cfmakeraw(&t);
        ::tcsetattr(master, TCSANOW, &t);
    }
    ~pty() { ::close(master); }
};

bool wait_in(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 2000) == 1;
}

// Reads exactly n bytes from a non-blocking fd.
bool read_n(int fd, std::byte* buf, std::size_t n) {
    std::size_t got = 0;
    while (got < n) {
        const auto r = ::read(fd, buf + got, n - got);
        if (r > 0) {
            got += static_cast<std::size_t>(r);
        } else if (r < 0 && errno == EAGAIN) {
            if (!wait_in(fd))
                return false;
        } else if (!(r < 0 && errno == EINTR)) {
            return false;
        }
    }
    return true;
}

int raw_open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        throw std::system_error(errno, std::system_category(), "open " + path);
    termios t{};
    ::tcgetattr(fd, &t);
    ::cfmakeraw(&t);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    ::tcsetattr(fd, TCSANOW, &t);
    return fd;
}

// One byte out through the far end, read by the code under test, echoed
// back by it, read at the far end again.
template <typename Echo>
void rtt_loop(benchmark::State& state, int far, Echo&& echo) {
    io::rt::latency_histogram h;
    std::byte b{0x55}, back{};
    std::int64_t n = 0;
    std::uint64_t allocs = 0;
    for (auto _ : state) {
        const auto a0 = bench::allocations();
        const auto t0 = bench::now_ns();
        if (::write(far, &b, 1) != 1 || !echo() || !read_n(far, &back, 1)) {
            state.SkipWithError("round trip failed");
            break;
        }
        const auto t1 = bench::now_ns();
        state.SetIterationTime(static_cast<double>(t1 - t0) * 1e-9);
        h.record_ns(t1 - t0);
        if (++n > 16)  // steady state
            allocs += bench::allocations() - a0;
    }
    state.counters["allocs_per_read"] = n > 16 ? static_cast<double>(allocs) / static_cast<double>(n - 16) : 0.0;
    bench::publish(state, h);
}

void rtt_raw(benchmark::State& state) {
    pty p;
    const int fd = raw_open(p.slave);
    rtt_loop(state, p.master, [&] {
        std::byte c{};
        if (!read_n(fd, &c, 1))
            return false;
        return ::write(fd, &c, 1) == 1;
    });
    ::close(fd);
}

void rtt_libio(benchmark::State& state) {
    pty p;
    io::serial_port port{p.slave};
    rtt_loop(state, p.master, [&] {
        std::array<std::byte, 1> c{};
        std::error_code ec;
        if (port.read_some(c, 2s, ec) != 1)
            return false;
        return port.write(std::span<const std::byte>(c), 2s, ec) == 1;
    });
}

// Bulk: the far end writes 4 KiB, the code under test reads all of it.
template <typename Read>
void bulk_loop(benchmark::State& state, int far, Read&& read4k) {
    std::array<std::byte, 4096> out{};
    std::uint64_t allocs = 0;
    std::int64_t n = 0;
    for (auto _ : state) {
        std::size_t put = 0;
        while (put < out.size()) {
            const auto r = ::write(far, out.data() + put, out.size() - put);
            if (r > 0)
                put += static_cast<std::size_t>(r);
            else if (r < 0 && errno != EAGAIN && errno != EINTR)
                break;
        }
        const auto a0 = bench::allocations();
        if (put != out.size() || !read4k()) {
            state.SkipWithError("bulk transfer failed");
            break;
        }
        if (++n > 16)
            allocs += bench::allocations() - a0;
    }
    state.SetBytesProcessed(n * static_cast<std::int64_t>(out.size()));
    state.counters["allocs_per_4k"] = n > 16 ? static_cast<double>(allocs) / static_cast<double>(n - 16) : 0.0;
}

void bulk_raw(benchmark::State& state) {
    pty p;
    const int fd = raw_open(p.slave);
    std::array<std::byte, 4096> in{};
    bulk_loop(state, p.master, [&] { return read_n(fd, in.data(), in.size()); });
    ::close(fd);
}

void bulk_libio(benchmark::State& state) {
    pty p;
    io::serial_port port{p.slave};
    std::array<std::byte, 4096> in{};
    bulk_loop(state, p.master, [&] {
        std::error_code ec;
        return port.read(in, io::read_timeouts{2s, 0us}, ec) == in.size();
    });
}

}  // namespace

int main(int argc, char** argv) {
    bench::add("serial_rtt_pty/raw_termios", rtt_raw)->UseManualTime();
    bench::add("serial_rtt_pty/libio", rtt_libio)->UseManualTime();
    bench::add("serial_bulk_pty/raw_termios", bulk_raw);
    bench::add("serial_bulk_pty/libio", bulk_libio);
    return bench::run_main(argc, argv);
}
