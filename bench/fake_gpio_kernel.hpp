// SPDX-License-Identifier: MIT
// bench_cost's fake kernel (fake_gpio_kernel.cpp): GPIO ioctls, and reads and
// waits on fake line requests, answered at once inside this process.
#pragma once

#include <cstddef>

namespace bench::fake_gpio {

/// A descriptor that stands for a line request: a real one (an eventfd:
/// fcntl, epoll_ctl and close work on it) whose reads, polls and epoll waits
/// the fake answers. GPIO_V2_GET_LINE_IOCTL hands out the same.
int new_line_fd();

/// How many edge events a read of a fake line request hands out at most
/// (fewer if the reader asks for fewer); each a new seqno, none lost.
void set_events_per_read(std::size_t n) noexcept;

}  // namespace bench::fake_gpio
