// SPDX-License-Identifier: MIT
#include "term.hpp"

#include "error.hpp"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <string>
#include <sys/signalfd.h>
#include <system_error>
#include <unistd.h>

namespace io::tools {

bool is_terminal(int fd) noexcept {
    return ::isatty(fd) == 1;
}

void progress_bar::update(std::size_t done, std::size_t total, std::string_view what) {
    if (!enabled_ || total == 0)
        return;
    constexpr std::size_t width = 30;
    const std::size_t filled = done * width / total;
    std::string bar(filled, '#');
    bar.append(width - filled, '.');
    out_ << "\r[" << bar << "] " << (done * 100 / total) << "%  " << what << "\x1b[K" << std::flush;
    drawn_ = true;
}

void progress_bar::finish() {
    if (drawn_) {
        out_ << "\r\x1b[K" << std::flush;
        drawn_ = false;
    }
}

signal_fd::signal_fd(std::initializer_list<int> signals) {
    sigset_t set;
    sigemptyset(&set);
    for (const int s : signals)
        sigaddset(&set, s);
    if (::sigprocmask(SIG_BLOCK, &set, &old_) != 0)
        throw std::system_error(errno, std::system_category(), "block signals");
    fd_ = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd_ < 0) {
        const int err = errno;
        ::sigprocmask(SIG_SETMASK, &old_, nullptr);
        throw std::system_error(err, std::system_category(), "signalfd");
    }
}

signal_fd::~signal_fd() {
    ::close(fd_);
    ::sigprocmask(SIG_SETMASK, &old_, nullptr);
}

int signal_fd::take() noexcept {
    signalfd_siginfo si{};
    const auto n = ::read(fd_, &si, sizeof si);
    return n == static_cast<ssize_t>(sizeof si) ? static_cast<int>(si.ssi_signo) : 0;
}

std::chrono::nanoseconds parse_duration(std::string_view text, std::string_view what) {
    const auto bad = [&] {
        usage_failure(std::string(what) + ": '" + std::string(text) +
                      "' is not a duration; give seconds (5, 0.5) or a unit (1.5s, 200ms, 50us)");
    };
    double number = 0;
    const auto* first = text.data();
    const auto* last = text.data() + text.size();
    const auto [p, ec] = std::from_chars(first, last, number);
    if (ec != std::errc{} || p == first || !std::isfinite(number) || number < 0)
        bad();
    const std::string_view unit{p, static_cast<std::size_t>(last - p)};
    double scale = 1e9;
    if (unit.empty() || unit == "s")
        scale = 1e9;
    else if (unit == "ms")
        scale = 1e6;
    else if (unit == "us")
        scale = 1e3;
    else if (unit == "ns")
        scale = 1;
    else
        bad();
    const double ns = number * scale;
    if (ns > 1e18)
        bad();
    return std::chrono::nanoseconds{static_cast<std::int64_t>(std::llround(ns))};
}

std::uint64_t parse_uint(std::string_view text, std::string_view what, std::uint64_t max) {
    int base = 10;
    std::string_view digits = text;
    if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
        base = 16;
        digits.remove_prefix(2);
    } else if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'b' || digits[1] == 'B')) {
        base = 2;
        digits.remove_prefix(2);
    }
    std::uint64_t v = 0;
    const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
    if (digits.empty() || ec != std::errc{} || p != digits.data() + digits.size())
        usage_failure(std::string(what) + ": '" + std::string(text) +
                      "' is not a number (decimal, 0x hex or 0b binary)");
    if (v > max)
        usage_failure(std::string(what) + ": " + std::string(text) + " is too large; at most " +
                      std::to_string(max));
    return v;
}

}  // namespace io::tools
