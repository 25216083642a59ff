// SPDX-License-Identifier: MIT
// Terminal and process helpers of the tools: progress bars, signals as a
// file descriptor, and parsing of the numbers and durations users type.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <string_view>

#include <signal.h>

namespace io::tools {

/// True when fd is a terminal.
bool is_terminal(int fd) noexcept;

/// A one-line progress bar redrawn in place, shown only when enabled (a
/// terminal): "[#########.........]  45%  P1A".
class progress_bar final {
public:
    progress_bar(std::ostream& out, bool enabled) : out_{out}, enabled_{enabled} {}
    ~progress_bar() { finish(); }
    progress_bar(const progress_bar&) = delete;
    progress_bar& operator=(const progress_bar&) = delete;

    void update(std::size_t done, std::size_t total, std::string_view what);
    /// Clears the bar's line.
    void finish();

private:
    std::ostream& out_;
    bool enabled_;
    bool drawn_ = false;
};

/// Blocks the given signals for the process and delivers them through a
/// file descriptor instead (signalfd), for event loops and poll. The
/// previous mask comes back on destruction.
class signal_fd final {
public:
    signal_fd(std::initializer_list<int> signals);
    ~signal_fd();
    signal_fd(const signal_fd&) = delete;
    signal_fd& operator=(const signal_fd&) = delete;

    int fd() const noexcept { return fd_; }
    /// The next pending signal's number, or 0 if none.
    int take() noexcept;

private:
    int fd_ = -1;
    sigset_t old_{};
};

/// "5", "0.5", "1.5s", "200ms", "50us": a non-negative duration, seconds
/// without a unit. Throws tool_error (usage) naming `what`.
std::chrono::nanoseconds parse_duration(std::string_view text, std::string_view what);

/// A non-negative integer in decimal, 0x hex or 0b binary, at most max.
/// Throws tool_error (usage) naming `what`.
std::uint64_t parse_uint(std::string_view text, std::string_view what,
                         std::uint64_t max = UINT64_MAX);

}  // namespace io::tools
