// SPDX-License-Identifier: MIT
#include "sys.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace io::detail {

int kernel_ioctl(int fd, unsigned long request, void* arg) noexcept {
    return ::ioctl(fd, request, arg);
}

namespace {

int do_open(const char* path, int flags, mode_t mode) {
    return ::open(path, flags, mode);
}

constexpr sys_calls kernel_calls{
    .open = do_open,
    .close = ::close,
    .read = ::read,
    .write = ::write,
    .ioctl = kernel_ioctl,
    .poll = ::poll,
    .epoll_wait = ::epoll_wait,
    .ppoll = ::ppoll,
    .flock = ::flock,
    .fstat = ::fstat,
    .setschedparam = ::pthread_setschedparam,
    .setaffinity = ::pthread_setaffinity_np,
    .getaffinity = ::pthread_getaffinity_np,
    .mlockall = ::mlockall,
    .clock_nanosleep = ::clock_nanosleep,
};

}  // namespace

sys_calls sys_table = kernel_calls;

sys_calls& sys() noexcept {
    return sys_table;
}

const sys_calls& real_sys() noexcept {
    return kernel_calls;
}

}  // namespace io::detail
