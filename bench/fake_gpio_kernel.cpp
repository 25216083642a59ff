// SPDX-License-Identifier: MIT
// The fake kernel of bench_cost (cost_bench.cpp): this binary's own
// definitions of ioctl, read, close, poll, ppoll, epoll_ctl, epoll_wait and
// realpath, which win over the C library's for every library in the process
// (libio, libgpiod, libgpiodcxx), as alloc_counter.cpp's malloc does. GPIO
// ioctls are answered at once by request code; reads, polls and epoll waits
// on the descriptors of fake line requests find one or more edge events
// ready at once; everything else goes to the kernel. In a file of its own so
// that the compiler cannot inline the fake into the raw baselines' calls.
#include "fake_gpio_kernel.hpp"

#include <linux/gpio.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdarg>
#include <cstring>
#include <dlfcn.h>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace {

// ---- the fake kernel

constexpr int max_fd = 1024;

struct fake_kernel {
    std::array<bool, max_fd> line_fd{};         // descriptors of fake line requests
    std::array<std::uint64_t, max_fd> seqno{};  // last event handed out, per request
    std::uint64_t levels = 0;                   // the lines' values (request bit order)
    std::size_t events_per_read = 1;            // events a read hands out at most
    // epoll: the data of the fake descriptor each epoll instance watches
    std::array<std::uint64_t, max_fd> epoll_data{};
    std::array<bool, max_fd> epoll_ready{};
} fk;

bool is_line_fd(int fd) noexcept {
    return fd >= 0 && fd < max_fd && fk.line_fd[static_cast<std::size_t>(fd)];
}

}  // namespace

namespace bench::fake_gpio {

int new_line_fd() {
    const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0 || fd >= max_fd)
        throw std::runtime_error("bench_cost: no descriptor for a fake line request");
    fk.line_fd[static_cast<std::size_t>(fd)] = true;
    fk.seqno[static_cast<std::size_t>(fd)] = 0;
    return fd;
}

void set_events_per_read(std::size_t n) noexcept {
    fk.events_per_read = n;
}

}  // namespace bench::fake_gpio

namespace {

int fake_gpio_ioctl(unsigned long request, void* arg) noexcept {
    switch (request) {
    case GPIO_V2_LINE_GET_VALUES_IOCTL: {
        auto* v = static_cast<gpio_v2_line_values*>(arg);
        v->bits = fk.levels & v->mask;
        return 0;
    }
    case GPIO_V2_LINE_SET_VALUES_IOCTL: {
        const auto* v = static_cast<const gpio_v2_line_values*>(arg);
        fk.levels = (fk.levels & ~v->mask) | (v->bits & v->mask);
        return 0;
    }
    case GPIO_GET_CHIPINFO_IOCTL: {
        auto* info = static_cast<gpiochip_info*>(arg);
        *info = gpiochip_info{};
        std::strncpy(info->name, "gpiochip99", sizeof info->name - 1);
        std::strncpy(info->label, "bench_cost fake", sizeof info->label - 1);
        info->lines = 64;
        return 0;
    }
    case GPIO_V2_GET_LINEINFO_IOCTL: {
        auto* info = static_cast<gpio_v2_line_info*>(arg);
        const unsigned off = info->offset;
        *info = gpio_v2_line_info{};
        info->offset = off;
        return 0;
    }
    case GPIO_V2_GET_LINE_IOCTL: {
        auto* req = static_cast<gpio_v2_line_request*>(arg);
        try {
            req->fd = bench::fake_gpio::new_line_fd();
        } catch (const std::exception&) {
            errno = EMFILE;
            return -1;
        }
        return 0;
    }
    default:
        errno = ENOTTY;
        return -1;
    }
}

bool is_gpio_ioctl(unsigned long request) noexcept {
    return _IOC_TYPE(request) == 0xB4;  // GPIO_*_IOCTL
}

ssize_t fake_event_read(int fd, void* buf, std::size_t n) noexcept {
    const std::size_t k = std::min(n / sizeof(gpio_v2_line_event), fk.events_per_read);
    if (k == 0) {
        errno = EINVAL;
        return -1;
    }
    auto* out = static_cast<gpio_v2_line_event*>(buf);
    auto& seq = fk.seqno[static_cast<std::size_t>(fd)];
    for (std::size_t i = 0; i < k; ++i) {
        out[i] = gpio_v2_line_event{};
        out[i].id = (seq & 1U) != 0 ? GPIO_V2_LINE_EVENT_FALLING_EDGE : GPIO_V2_LINE_EVENT_RISING_EDGE;
        out[i].timestamp_ns = 1'000'000'000 + seq;
        out[i].seqno = static_cast<std::uint32_t>(++seq);
        out[i].line_seqno = static_cast<std::uint32_t>(seq);
    }
    return static_cast<ssize_t>(k * sizeof(gpio_v2_line_event));
}

}  // namespace

// ---- the C library functions this binary answers itself (for every library
// in the process); anything but the fake's descriptors goes to the kernel.
extern "C" {

int ioctl(int fd, unsigned long request, ...) {
    va_list ap;
    va_start(ap, request);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    if (is_gpio_ioctl(request))
        return fake_gpio_ioctl(request, arg);
    return static_cast<int>(::syscall(SYS_ioctl, fd, request, arg));
}

ssize_t read(int fd, void* buf, size_t n) {
    if (is_line_fd(fd))
        return fake_event_read(fd, buf, n);
    return ::syscall(SYS_read, fd, buf, n);
}

int close(int fd) {
    if (fd >= 0 && fd < max_fd) {
        fk.line_fd[static_cast<std::size_t>(fd)] = false;
        fk.epoll_ready[static_cast<std::size_t>(fd)] = false;
    }
    return static_cast<int>(::syscall(SYS_close, fd));
}

// glibc declares fds write-only (access attribute), though the kernel reads
// its fd and events members first.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
int poll(pollfd* fds, nfds_t n, int timeout_ms) {
    if (n == 1 && is_line_fd(fds[0].fd)) {
        fds[0].revents = POLLIN;
        return 1;
    }
    return static_cast<int>(::syscall(SYS_poll, fds, n, timeout_ms));
}

int ppoll(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask) {
    if (n == 1 && is_line_fd(fds[0].fd)) {
        fds[0].revents = POLLIN;
        return 1;
    }
    return static_cast<int>(::syscall(SYS_ppoll, fds, n, timeout, mask, _NSIG / 8));
}
#pragma GCC diagnostic pop

int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) {
    const int r = static_cast<int>(::syscall(SYS_epoll_ctl, epfd, op, fd, ev));
    if (r == 0 && is_line_fd(fd) && epfd >= 0 && epfd < max_fd) {
        const auto e = static_cast<std::size_t>(epfd);
        fk.epoll_ready[e] = op != EPOLL_CTL_DEL;
        if (op != EPOLL_CTL_DEL)
            fk.epoll_data[e] = ev->data.u64;
    }
    return r;
}

// An epoll instance that watches a fake line request finds it readable.
int epoll_wait(int epfd, epoll_event* evs, int max, int timeout_ms) {
    if (epfd >= 0 && epfd < max_fd && fk.epoll_ready[static_cast<std::size_t>(epfd)] && max > 0) {
        evs[0].events = EPOLLIN;
        evs[0].data.u64 = fk.epoll_data[static_cast<std::size_t>(epfd)];
        return 1;
    }
    return static_cast<int>(::syscall(SYS_epoll_wait, epfd, evs, max, timeout_ms));
}

// libgpiod checks that a chip's path is a GPIO character device through
// sysfs: /dev/null's device is presented as one, so gpiod_chip_open works
// on it (its ioctls are answered above, by request code).
char* realpath(const char* path, char* resolved) {
    static const std::string fake_subsystem = [] {
        struct stat st {};
        if (::stat("/dev/null", &st) != 0)
            return std::string{};
        return "/sys/dev/char/" + std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev)) +
               "/subsystem";
    }();
    if (path != nullptr && !fake_subsystem.empty() && path == fake_subsystem) {
        const char* answer = "/sys/bus/gpio";
        return resolved != nullptr ? std::strcpy(resolved, answer) : ::strdup(answer);
    }
    using fn = char* (*)(const char*, char*);
    static const auto next = reinterpret_cast<fn>(::dlsym(RTLD_NEXT, "realpath"));
    return next(path, resolved);
}

}  // extern "C"
