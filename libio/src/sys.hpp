// SPDX-License-Identifier: MIT
#pragma once

#include <io/export.hpp>

#include <cerrno>
#include <cstddef>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/epoll.h>
#include <sys/types.h>

// The C library's ioctl, as <sys/ioctl.h> declares it (not included here:
// its termios structures clash with <asm/termbits.h> in serial_port.cpp).
extern "C" int ioctl(int fd, unsigned long request, ...) noexcept;

namespace io::detail {

/// Every system call libio makes goes through this table, so that tests can
/// put a fault in any path (EINTR, EAGAIN, ENODEV, short transfers) without
/// a kernel that misbehaves on cue. Production code never changes it.
struct sys_calls {
    int (*open)(const char* path, int flags, mode_t mode);
    int (*close)(int fd);
    ssize_t (*read)(int fd, void* buf, size_t n);
    ssize_t (*write)(int fd, const void* buf, size_t n);
    int (*ioctl)(int fd, unsigned long request, void* arg);
    int (*poll)(pollfd* fds, nfds_t n, int timeout_ms);
    int (*epoll_wait)(int epfd, epoll_event* events, int max, int timeout_ms);
    int (*ppoll)(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask);
    int (*flock)(int fd, int operation);
    int (*fstat)(int fd, struct stat* st);
    // io::rt. The pthread ones and clock_nanosleep return the error number
    // (0 on success) instead of setting errno, as the C library's do.
    int (*setschedparam)(pthread_t thread, int policy, const sched_param* param);
    int (*setaffinity)(pthread_t thread, size_t size, const cpu_set_t* set);
    int (*getaffinity)(pthread_t thread, size_t size, cpu_set_t* set);
    int (*mlockall)(int flags);
    int (*clock_nanosleep)(clockid_t clock, int flags, const timespec* request, timespec* remain);
};

/// The table in use; tests swap it with sys_override.
LIBIO_EXPORT sys_calls& sys() noexcept;

/// What sys() returns, for the library's own hot paths (fast_ioctl): read
/// without a call. Not exported.
[[gnu::visibility("hidden")]] extern sys_calls sys_table;

/// The kernel's own entry points.
LIBIO_EXPORT const sys_calls& real_sys() noexcept;

/// Replaces the table for the lifetime of the object (tests only).
class sys_override {
public:
    explicit sys_override(const sys_calls& calls) noexcept : saved_{sys()} { sys() = calls; }
    ~sys_override() { sys() = saved_; }
    sys_override(const sys_override&) = delete;
    sys_override& operator=(const sys_override&) = delete;

private:
    sys_calls saved_;
};

/// The kernel's ioctl behind the table's entry (what real_sys().ioctl calls).
int kernel_ioctl(int fd, unsigned long request, void* arg) noexcept;

/// ioctl through the table, for the hot paths (line get/set): when the
/// table holds the kernel's entry, the C library's ioctl called directly
/// (what kernel_ioctl would call, without that hop or an indirect call,
/// which costs most under emulation); a test's fake is called as ever.
inline int fast_ioctl(int fd, unsigned long request, void* arg) noexcept {
    const auto f = sys_table.ioctl;
    return f == &kernel_ioctl ? ::ioctl(fd, request, arg) : f(fd, request, arg);
}

/// Calls fn until it stops failing with EINTR; a signal is never an error.
template <typename Fn>
[[gnu::always_inline]] inline auto retry_eintr(Fn&& fn) {
    for (;;) {
        auto r = fn();
        if (!(r < 0 && errno == EINTR))
            return r;
    }
}

}  // namespace io::detail
