// SPDX-License-Identifier: MIT
// Serial ports: one-byte round trip and bulk throughput through libio's
// serial_port against raw termios read/write on the same kind of tty.
//
// Natively the tty is a pty: the bench holds the master as the far end of
// the cable, and the code under test echoes. In the test VM, bench/run-vm
// sets LIBIO_BENCH_UART=/dev/ttySx (a 16550A of QEMU's pci-serial-4x) and the
// UART runs in its internal loopback (MCR LOOP, TIOCM_LOOP): every byte the
// code under test writes goes out through the transmitter and comes back
// through the receiver and the 8250 driver, with no host process in the way.
#include "bench_common.hpp"

#include <io/serial_port.hpp>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <vector>

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

// Moves exactly n bytes through a non-blocking fd: io(done) makes one read or
// write call for the bytes from `done` on; EAGAIN waits (2 s at most) for
// `ready`.
template <typename Io>
bool transfer_all(int fd, short ready, std::size_t n, Io&& io) {
    std::size_t done = 0;
    while (done < n) {
        const auto r = io(done);
        if (r > 0) {
            done += static_cast<std::size_t>(r);
        } else if (r < 0 && errno == EAGAIN) {
            pollfd p{fd, ready, 0};
            if (::poll(&p, 1, 2000) != 1)
                return false;
        } else if (!(r < 0 && errno == EINTR)) {
            return false;
        }
    }
    return true;
}

bool read_n(int fd, std::byte* buf, std::size_t n) {
    return transfer_all(fd, POLLIN, n, [&](std::size_t done) { return ::read(fd, buf + done, n - done); });
}

bool write_all(int fd, const std::byte* buf, std::size_t n) {
    return transfer_all(fd, POLLOUT, n, [&](std::size_t done) { return ::write(fd, buf + done, n - done); });
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
    const std::byte b{0x55};
    std::byte back{};
    bench::time_each(
        state, [&] { return ::write(far, &b, 1) == 1 && echo() && read_n(far, &back, 1); }, "round trip failed");
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
        const bool put = write_all(far, out.data(), out.size());
        const auto a0 = bench::allocations();
        if (!put || !read4k()) {
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

// ---- the UART in its internal loopback (test VM)

const char* uart_path() { return std::getenv("LIBIO_BENCH_UART"); }

constexpr int tiocm_loop = 0x8000;  // TIOCM_LOOP, in the kernel's asm/termios.h only

// Puts the UART in loopback for the life of the case, and empties its queues.
struct uart_loopback {
    int fd;
    explicit uart_loopback(int f) : fd{f} {
        int bit = tiocm_loop;
        if (::ioctl(fd, TIOCMBIS, &bit) != 0)
            throw std::system_error(errno, std::system_category(), "TIOCMBIS TIOCM_LOOP");
        ::tcflush(fd, TCIOFLUSH);
    }
    ~uart_loopback() {
        int bit = tiocm_loop;
        ::ioctl(fd, TIOCMBIC, &bit);
    }
};

int raw_open_uart() {
    const int fd = raw_open(uart_path());
    termios t{};
    ::tcgetattr(fd, &t);
    ::cfsetspeed(&t, B115200);
    t.c_cflag |= CLOCAL | CREAD;
    t.c_cflag &= ~static_cast<tcflag_t>(CRTSCTS);
    ::tcsetattr(fd, TCSANOW, &t);
    return fd;
}


// The code under test writes `out` and reads it back through the UART.
// Latency per iteration; allocations counted around the read.
template <typename WriteRead>
void uart_loop(benchmark::State& state, std::size_t size, WriteRead&& write_read) {
    io::rt::latency_histogram h;
    std::vector<std::byte> out(size), in(size);
    std::uint64_t allocs = 0, bad = 0;
    std::int64_t n = 0;
    for (auto _ : state) {
        for (std::size_t i = 0; i < size; ++i)
            out[i] = static_cast<std::byte>((static_cast<std::size_t>(n) + i) & 0xff);
        std::uint64_t a_read = 0;
        const auto t0 = bench::now_ns();
        if (!write_read(out, in, a_read)) {
            state.SkipWithError("UART loopback transfer failed");
            break;
        }
        const auto t1 = bench::now_ns();
        state.SetIterationTime(static_cast<double>(t1 - t0) * 1e-9);
        h.record_ns(t1 - t0);
        bad += out != in;
        if (++n > 16)
            allocs += a_read;
    }
    if (bad != 0)
        state.SkipWithError("bytes came back changed");
    state.SetBytesProcessed(n * static_cast<std::int64_t>(size));
    state.counters["allocs_per_read"] = n > 16 ? static_cast<double>(allocs) / static_cast<double>(n - 16) : 0.0;
    bench::publish(state, h);
}

void uart_raw(benchmark::State& state, std::size_t size) {
    const int fd = raw_open_uart();
    {
        uart_loopback lb{fd};
        uart_loop(state, size,
                  [&](const std::vector<std::byte>& out, std::vector<std::byte>& in, std::uint64_t& allocs) {
                      if (!write_all(fd, out.data(), out.size()))
                          return false;
                      const auto a0 = bench::allocations();
                      const bool ok = read_n(fd, in.data(), in.size());
                      allocs = bench::allocations() - a0;
                      return ok;
                  });
    }
    ::close(fd);
}

void uart_libio(benchmark::State& state, std::size_t size) {
    io::serial_port port{uart_path()};  // 115200 8N1, as raw_open_uart()
    uart_loopback lb{port.fd()};
    uart_loop(state, size,
              [&](const std::vector<std::byte>& out, std::vector<std::byte>& in, std::uint64_t& allocs) {
                  std::error_code ec;
                  if (port.write(std::span<const std::byte>(out), 2s, ec) != out.size())
                      return false;
                  const auto a0 = bench::allocations();
                  const bool ok = port.read(in, io::read_timeouts{2s, 0us}, ec) == in.size();
                  allocs = bench::allocations() - a0;
                  return ok;
              });
}

// 1 byte: the round trip. 1 KiB: throughput (TCG's 16550 moves some tens
// of KiB/s, so more would only make the run longer).
void uart_rtt_raw(benchmark::State& s) { uart_raw(s, 1); }
void uart_rtt_libio(benchmark::State& s) { uart_libio(s, 1); }
void uart_bulk_raw(benchmark::State& s) { uart_raw(s, 1024); }
void uart_bulk_libio(benchmark::State& s) { uart_libio(s, 1024); }

}  // namespace

int main(int argc, char** argv) {
    if (uart_path() != nullptr) {
        bench::add("serial_rtt_uart/raw_termios", uart_rtt_raw)->UseManualTime();
        bench::add("serial_rtt_uart/libio", uart_rtt_libio)->UseManualTime();
        bench::add("serial_bulk_uart/raw_termios", uart_bulk_raw)->UseManualTime();
        bench::add("serial_bulk_uart/libio", uart_bulk_libio)->UseManualTime();
    } else {
        bench::add("serial_rtt_pty/raw_termios", rtt_raw)->UseManualTime();
        bench::add("serial_rtt_pty/libio", rtt_libio)->UseManualTime();
        bench::add("serial_bulk_pty/raw_termios", bulk_raw);
        bench::add("serial_bulk_pty/libio", bulk_libio);
    }
    return bench::run_main(argc, argv);
}
