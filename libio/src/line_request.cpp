// SPDX-License-Identifier: MIT
#include <io/chip.hpp>
#include <io/error.hpp>
#include <io/line_request.hpp>

#include "error.hpp"
#include "event_loop_access.hpp"
#include "line_request_access.hpp"
#include "sys.hpp"

#include <linux/gpio.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <memory>
#include <poll.h>
#include <string_view>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace io {

line_request::line_request(int fd, std::string chip_path, std::vector<unsigned> offsets)
    : fd_{fd}, chip_path_{std::move(chip_path)}, offsets_{std::move(offsets)} {
    index_.fill(0xff);
    for (std::size_t i = 0; i < offsets_.size(); ++i)
        if (offsets_[i] < index_.size())
            index_[offsets_[i]] = static_cast<std::uint8_t>(i);
    // From the end: a position continues the run of the next one when the
    // next holds its offset + 1.
    for (std::size_t i = std::min(offsets_.size(), run_.size()); i-- > 0;)
        run_[i] = static_cast<std::uint8_t>(
            i + 1 < run_.size() && i + 1 < offsets_.size() && offsets_[i + 1] == offsets_[i] + 1 ? run_[i + 1] + 1 : 1);
    line_seqno_.assign(offsets_.size(), 0);
    const int fl = ::fcntl(fd_, F_GETFL);
    if (fl >= 0)
        (void)::fcntl(fd_, F_SETFL, fl | O_NONBLOCK);
}

line_request::~line_request() {
    release();
}

line_request::line_request(line_request&& o) noexcept
    : fd_{o.fd_},
      chip_path_{std::move(o.chip_path_)},
      offsets_{std::move(o.offsets_)},
      index_{o.index_},
      run_{o.run_},
      max_seqno_{o.max_seqno_},
      received_{o.received_},
      line_seqno_{std::move(o.line_seqno_)},
      lost_fd_{o.lost_fd_},
      card_lost_{o.card_lost_},
      card_lost_seen_{std::move(o.card_lost_seen_)} {
    o.fd_ = -1;
    o.lost_fd_ = -1;
}

line_request& line_request::operator=(line_request&& o) noexcept {
    if (this != &o) {
        release();
        fd_ = o.fd_;
        chip_path_ = std::move(o.chip_path_);
        offsets_ = std::move(o.offsets_);
        index_ = o.index_;
        run_ = o.run_;
        max_seqno_ = o.max_seqno_;
        received_ = o.received_;
        line_seqno_ = std::move(o.line_seqno_);
        lost_fd_ = o.lost_fd_;
        card_lost_ = o.card_lost_;
        card_lost_seen_ = std::move(o.card_lost_seen_);
        o.fd_ = -1;
        o.lost_fd_ = -1;
    }
    return *this;
}

void line_request::release() noexcept {
    if (fd_ >= 0)
        detail::sys().close(fd_);
    fd_ = -1;
    if (lost_fd_ >= 0)
        ::close(lost_fd_);
    lost_fd_ = -1;
}

// The card's sysfs attribute "lost" (kmod/ABI.md), found from the chip's
// character device: its sysfs device is the gpiochip, a child of the
// card's class device. Not an iocard card (no such attribute, or another
// class): nothing to watch.
void line_request::open_card_lost() {
    struct stat st{};
    if (::stat(chip_path_.c_str(), &st) != 0 || !S_ISCHR(st.st_mode))
        return;
    const std::string card = "/sys/dev/char/" + std::to_string(major(st.st_rdev)) + ":" +
                             std::to_string(minor(st.st_rdev)) + "/..";
    char cls[256];
    const auto n = ::readlink((card + "/subsystem").c_str(), cls, sizeof cls - 1);
    if (n <= 0 || !std::string_view(cls, static_cast<std::size_t>(n)).ends_with("/class/iocard"))
        return;
    lost_fd_ = ::open((card + "/lost").c_str(), O_RDONLY | O_CLOEXEC);
    if (lost_fd_ < 0)
        return;
    card_lost_seen_.assign(offsets_.size(), 0);
    // The card's counts start when a line's edge detection does: what is
    // there already belongs to this request.
    (void)take_card_lost();
}

bool line_request::take_card_lost() const noexcept {
    if (lost_fd_ < 0)
        return false;
    // "OFFSET:COUNT OFFSET:COUNT ...\n", at most a page.
    char buf[4096];
    const auto n = ::pread(lost_fd_, buf, sizeof buf - 1, 0);
    if (n < 0) {  // the card went away: its requests fail on their own
        ::close(lost_fd_);
        lost_fd_ = -1;
        return false;
    }
    buf[n] = '\0';
    std::array<std::uint64_t, 256> now{};  // by offset; absent: 0
    for (const char* p = buf; *p != '\0';) {
        char* end = nullptr;
        const auto off = std::strtoul(p, &end, 10);
        if (end == p || *end != ':')
            break;
        p = end + 1;
        const auto count = std::strtoull(p, &end, 10);
        if (end == p)
            break;
        p = end;
        while (*p == ' ' || *p == '\n')
            ++p;
        if (off < now.size())
            now[off] = count;
    }
    for (std::size_t i = 0; i < offsets_.size() && i < card_lost_seen_.size(); ++i) {
        const auto c = offsets_[i] < now.size() ? now[offsets_[i]] : 0;
        // A count that went down started again (the line's edge detection
        // was set up anew): all of it is new.
        card_lost_ += c >= card_lost_seen_[i] ? c - card_lost_seen_[i] : c;
        card_lost_seen_[i] = c;
    }
    return true;
}

void line_request::check_usable(const char* what) const {
    if (fd_ < 0)
        throw usage_error(std::string(what) + " on a released line request of " + chip_path_);
}

namespace {

// Where the caller's lines sit in the request. When they are a run of the
// request in the same order (a whole port, a single line: the common case)
// the bits map by one shift; otherwise bit by bit through `pos`.
struct placement {
    std::uint64_t mask = 0;           // request-order bits of the lines
    int shift = -1;                   // >= 0: lines[i] is request bit shift + i
    std::array<std::uint8_t, 64> pos; // otherwise: lines[i] is request bit pos[i]
};

// Inlined: it is on the get/set hot path, and an out-of-line call costs a
// measurable share of a GPIO ioctl under emulation.
[[gnu::always_inline]] inline std::size_t position(unsigned off, const std::vector<unsigned>& offsets,
                                                   const std::array<std::uint8_t, 256>& index) noexcept {
    if (off < index.size())
        return index[off] == 0xff ? offsets.size() : index[off];
    return static_cast<std::size_t>(std::find(offsets.begin(), offsets.end(), off) - offsets.begin());
}

// The common case: consecutive offsets (a port of an iocard card) that the
// request holds as consecutive positions. The request's side is known from
// run (no second array to read); the caller's lines are checked against
// first, first + 1, ... eight at a time, without an early exit (a loop
// without branches; for a whole port it always runs out). Inlined into
// get_core and set_core: a port's read or write is this and one ioctl, and
// every call level costs a measurable share of it.
[[gnu::always_inline]] inline bool consecutive(std::span<const unsigned> lines,
                                               const std::array<std::uint8_t, 256>& index,
                                               const std::array<std::uint8_t, 64>& run, std::uint64_t& mask,
                                               int& shift) noexcept {
    const std::size_t n = lines.size();
    if (n == 0)
        return false;
    const unsigned first = lines[0];
    if (first >= index.size())
        return false;
    const std::size_t k0 = index[first];
    if (k0 >= run.size() || n > run[k0])
        return false;
    using four = unsigned __attribute__((vector_size(16)));  // SSE2 / NEON width
    four expect0{first, first + 1, first + 2, first + 3};
    four expect1 = expect0 + 4;
    four acc0{}, acc1{};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        four a, b;
        std::memcpy(&a, lines.data() + i, sizeof a);
        std::memcpy(&b, lines.data() + i + 4, sizeof b);
        acc0 |= a ^ expect0;
        acc1 |= b ^ expect1;
        expect0 += 8;
        expect1 += 8;
    }
    acc0 |= acc1;
#if defined(__SSE2__)
    // All four lanes zero? One compare and one mask, not three shuffles.
    unsigned diff =
        static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi32(reinterpret_cast<__m128i>(acc0), _mm_setzero_si128()))) ^
        0xffffU;
#else
    unsigned diff = acc0[0] | acc0[1] | acc0[2] | acc0[3];
#endif
    for (; i < n; ++i)
        diff |= lines[i] ^ (first + static_cast<unsigned>(i));
    // n <= run[k0] <= 64 - k0: the mask fits.
    mask = (n == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1) << k0;
    shift = static_cast<int>(k0);
    return diff == 0;
}

// False when there are more than 64 lines or one is not in the request.
bool place(std::span<const unsigned> lines, const std::vector<unsigned>& offsets,
           const std::array<std::uint8_t, 256>& index, placement& p) noexcept {
    const std::size_t n = lines.size();
    if (n == 0) {
        p.shift = 0;
        return true;
    }
    if (n > 64)
        return false;
    // A run of the request in its order: the two compared.
    const std::size_t k0 = position(lines[0], offsets, index);
    bool is_run = k0 + n <= offsets.size();
    for (std::size_t i = 0; is_run && i < n; ++i)
        is_run = lines[i] == offsets[k0 + i];
    if (is_run) {
        p.mask = (n == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1) << k0;
        p.shift = static_cast<int>(k0);
        return true;
    }
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t k = position(lines[i], offsets, index);
        if (k >= offsets.size())
            return false;
        p.pos[i] = static_cast<std::uint8_t>(k);
        p.mask |= std::uint64_t{1} << k;
    }
    return true;
}

}  // namespace

std::uint64_t line_request::mask_of(std::span<const unsigned> lines, const char* what) const {
    if (lines.size() > 64)
        throw invalid_argument(std::string(what) + ": at most 64 lines at once, got " + std::to_string(lines.size()));
    std::uint64_t mask = 0;
    for (auto off : lines) {
        const std::size_t i = position(off, offsets_, index_);
        if (i >= offsets_.size())
            throw invalid_argument(std::string(what) + ": line " + std::to_string(off) + " of " + chip_path_ +
                                   " is not in this request");
        mask |= std::uint64_t{1} << i;
    }
    return mask;
}

namespace {

// Any lines of the request, in any order: placed, then one ioctl. Out of
// line: the hot paths below keep the consecutive case small.
[[gnu::noinline]] int get_placed(int fd, std::span<const unsigned> lines, const std::vector<unsigned>& offsets,
                                 const std::array<std::uint8_t, 256>& index, std::uint64_t& out) noexcept {
    placement p;
    if (!place(lines, offsets, index, p))
        return EINVAL;
    gpio_v2_line_values v{};
    v.mask = p.mask;
    if (detail::retry_eintr([&] { return detail::fast_ioctl(fd, GPIO_V2_LINE_GET_VALUES_IOCTL, &v); }) < 0)
        return errno;
    if (p.shift >= 0) {
        out = (v.bits & p.mask) >> p.shift;
        return 0;
    }
    out = 0;
    for (std::size_t i = 0; i < lines.size(); ++i)
        out |= ((v.bits >> p.pos[i]) & 1U) << i;
    return 0;
}

[[gnu::noinline]] int set_placed(int fd, std::span<const unsigned> lines, std::uint64_t bits,
                                 const std::vector<unsigned>& offsets, const std::array<std::uint8_t, 256>& index) noexcept {
    placement p;
    if (!place(lines, offsets, index, p))
        return EINVAL;
    gpio_v2_line_values v{};
    v.mask = p.mask;
    if (p.shift >= 0) {
        v.bits = (bits << p.shift) & p.mask;
    } else {
        for (std::size_t i = 0; i < lines.size(); ++i)
            v.bits |= ((bits >> i) & 1U) << p.pos[i];
    }
    if (detail::retry_eintr([&] { return detail::fast_ioctl(fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v); }) < 0)
        return errno;
    return 0;
}

// The hot paths, shared by the throwing and the error_code calls: 0 or an
// errno, nothing else (no error_code, no allocation).
[[gnu::always_inline]] inline int get_core(int fd, std::span<const unsigned> lines, const std::vector<unsigned>& offsets,
                                           const std::array<std::uint8_t, 256>& index,
                                           const std::array<std::uint8_t, 64>& run, std::uint64_t& out) noexcept {
    std::uint64_t mask;
    int shift;
    if (!consecutive(lines, index, run, mask, shift)) [[unlikely]]
        return get_placed(fd, lines, offsets, index, out);
    gpio_v2_line_values v{0, mask};
    if (detail::retry_eintr([&] { return detail::fast_ioctl(fd, GPIO_V2_LINE_GET_VALUES_IOCTL, &v); }) < 0)
        return errno;
    out = (v.bits & mask) >> shift;
    return 0;
}

[[gnu::always_inline]] inline int set_core(int fd, std::span<const unsigned> lines, std::uint64_t bits,
                                           const std::vector<unsigned>& offsets,
                                           const std::array<std::uint8_t, 256>& index,
                                           const std::array<std::uint8_t, 64>& run) noexcept {
    std::uint64_t mask;
    int shift;
    if (!consecutive(lines, index, run, mask, shift)) [[unlikely]]
        return set_placed(fd, lines, bits, offsets, index);
    gpio_v2_line_values v{(bits << shift) & mask, mask};
    if (detail::retry_eintr([&] { return detail::fast_ioctl(fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v); }) < 0)
        return errno;
    return 0;
}

// One line, the most common call: its request bit straight from the index,
// no placement. False if the line is not in the request (the caller then
// takes the general path, which reports it).
[[gnu::always_inline]] inline bool bit_of(unsigned off, const std::vector<unsigned>& offsets,
                                          const std::array<std::uint8_t, 256>& index, std::size_t& k) noexcept {
    if (off < index.size()) {
        k = index[off];  // 0xff if absent; a position of the request otherwise
        return k < 64;
    }
    k = position(off, offsets, index);
    return k < offsets.size() && k < 64;
}

[[gnu::always_inline]] inline int get_one(int fd, std::size_t k, bool& out) noexcept {
    gpio_v2_line_values v{};
    v.mask = std::uint64_t{1} << k;
    if (detail::retry_eintr([&] { return detail::fast_ioctl(fd, GPIO_V2_LINE_GET_VALUES_IOCTL, &v); }) < 0)
        return errno;
    out = ((v.bits >> k) & 1U) != 0;
    return 0;
}

[[gnu::always_inline]] inline int set_one(int fd, std::size_t k, bool value) noexcept {
    gpio_v2_line_values v{};
    v.mask = std::uint64_t{1} << k;
    v.bits = value ? v.mask : 0;
    if (detail::retry_eintr([&] { return detail::fast_ioctl(fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v); }) < 0)
        return errno;
    return 0;
}

// A line outside the request, or a released request: the general path,
// which reports it. Out of line, so that the hot path needs no stack frame.
[[gnu::cold, gnu::noinline]] bool get_general(const line_request& r, unsigned offset) {
    return r.get_bits(std::span<const unsigned>(&offset, 1)) != 0;
}

[[gnu::cold, gnu::noinline]] bool get_general(const line_request& r, unsigned offset, std::error_code& ec) noexcept {
    return r.get_bits(std::span<const unsigned>(&offset, 1), ec) != 0;
}

[[gnu::cold, gnu::noinline]] void set_general(line_request& r, unsigned offset, bool value) {
    r.set_bits(std::span<const unsigned>(&offset, 1), value ? 1U : 0U);
}

[[gnu::cold, gnu::noinline]] void set_general(line_request& r, unsigned offset, bool value,
                                              std::error_code& ec) noexcept {
    r.set_bits(std::span<const unsigned>(&offset, 1), value ? 1U : 0U, ec);
}

// The errors of get and set, out of their hot paths.
[[gnu::cold, gnu::noinline, noreturn]] void throw_get_error(int err, const std::string& chip_path) {
    detail::throw_errno(err, "get lines of " + chip_path);
}

[[gnu::cold, gnu::noinline, noreturn]] void throw_set_error(int err, const std::string& chip_path) {
    if (err == EPERM)
        detail::throw_errno(err, "set lines of " + chip_path + " (only outputs can be set)");
    detail::throw_errno(err, "set lines of " + chip_path);
}

}  // namespace

std::uint64_t line_request::get_bits(std::span<const unsigned> lines, std::error_code& ec) const noexcept {
    std::uint64_t bits = 0;
    const int err = fd_ < 0 ? EBADF : get_core(fd_, lines, offsets_, index_, run_, bits);
    ec = err != 0 ? detail::errno_code(err) : std::error_code{};
    return err != 0 ? 0 : bits;
}

// Why a get or set of several lines failed, as an exception: a released
// request, lines outside the request (named), or the kernel's error. Out of
// the hot paths.
void line_request::throw_bits_error(std::span<const unsigned> lines, int err, const char* what) const {
    check_usable(what);
    if (err == EINVAL)
        (void)mask_of(lines, what);  // a clear message for lines outside the request
    if (err == EPERM && std::string_view(what) == "set")
        detail::throw_errno(err, "set lines of " + chip_path_ + " (only outputs can be set)");
    detail::throw_errno(err, std::string(what) + " lines of " + chip_path_);
}

std::uint64_t line_request::get_bits(std::span<const unsigned> lines) const {
    std::uint64_t bits = 0;
    const int err = fd_ < 0 ? EBADF : get_core(fd_, lines, offsets_, index_, run_, bits);
    if (err != 0) [[unlikely]]
        throw_bits_error(lines, err, "get");
    return bits;
}

void line_request::set_bits(std::span<const unsigned> lines, std::uint64_t bits, std::error_code& ec) noexcept {
    const int err = fd_ < 0 ? EBADF : set_core(fd_, lines, bits, offsets_, index_, run_);
    ec = err != 0 ? detail::errno_code(err) : std::error_code{};
}

void line_request::set_bits(std::span<const unsigned> lines, std::uint64_t bits) {
    const int err = fd_ < 0 ? EBADF : set_core(fd_, lines, bits, offsets_, index_, run_);
    if (err != 0) [[unlikely]]
        throw_bits_error(lines, err, "set");
}

bool line_request::get(unsigned offset, std::error_code& ec) const noexcept {
    std::size_t k = 0;
    if (fd_ < 0 || !bit_of(offset, offsets_, index_, k))
        return get_general(*this, offset, ec);
    bool value = false;
    const int err = get_one(fd_, k, value);
    ec = err != 0 ? detail::errno_code(err) : std::error_code{};
    return value;
}

bool line_request::get(unsigned offset) const {
    std::size_t k = 0;
    if (fd_ < 0 || !bit_of(offset, offsets_, index_, k))
        return get_general(*this, offset);
    bool value = false;
    if (const int err = get_one(fd_, k, value); err != 0)
        throw_get_error(err, chip_path_);
    return value;
}

void line_request::set(unsigned offset, bool value, std::error_code& ec) noexcept {
    std::size_t k = 0;
    if (fd_ < 0 || !bit_of(offset, offsets_, index_, k))
        return set_general(*this, offset, value, ec);
    const int err = set_one(fd_, k, value);
    ec = err != 0 ? detail::errno_code(err) : std::error_code{};
}

void line_request::set(unsigned offset, bool value) {
    std::size_t k = 0;
    if (fd_ < 0 || !bit_of(offset, offsets_, index_, k))
        return set_general(*this, offset, value);
    if (const int err = set_one(fd_, k, value); err != 0)
        throw_set_error(err, chip_path_);
}

// A port's read and write: the consecutive case and one ioctl, returning
// at once when it succeeded (nothing kept across the call but what the
// result needs); anything else (a released request, another layout, a
// signal, an error) goes the general way, which retries and reports.
std::uint64_t line_request::read_port(const port& p) const {
    std::uint64_t mask;
    int shift;
    if (fd_ >= 0 && consecutive(p.lines, index_, run_, mask, shift)) [[likely]] {
        gpio_v2_line_values v{0, mask};
        if (detail::fast_ioctl(fd_, GPIO_V2_LINE_GET_VALUES_IOCTL, &v) == 0) [[likely]]
            return (v.bits & mask) >> shift;
    }
    return get_bits(p.lines);
}

void line_request::throw_port_value_error(const port& p, std::uint64_t value) const {
    throw invalid_argument("write port " + p.name + " of " + chip_path_ + ": value " + std::to_string(value) +
                           " does not fit its " + std::to_string(p.lines.size()) + " lines (0.." +
                           std::to_string((std::uint64_t{1} << p.lines.size()) - 1) + ")");
}

void line_request::write_port(const port& p, std::uint64_t value) {
    if (p.lines.size() < 64 && (value >> p.lines.size()) != 0) [[unlikely]]
        throw_port_value_error(p, value);
    std::uint64_t mask;
    int shift;
    if (fd_ >= 0 && consecutive(p.lines, index_, run_, mask, shift)) [[likely]] {
        gpio_v2_line_values v{(value << shift) & mask, mask};
        if (detail::fast_ioctl(fd_, GPIO_V2_LINE_SET_VALUES_IOCTL, &v) == 0) [[likely]]
            return;
    }
    set_bits(p.lines, value);
}

bool line_request::wait_edge_events(std::chrono::nanoseconds timeout, std::error_code& ec) const noexcept {
    ec.clear();
    if (fd_ < 0) {
        ec = detail::errno_code(EBADF);
        return false;
    }
    // One clock read, for a positive timeout only: the first wait is the
    // whole timeout, and only a wait cut short by a signal needs the time left.
    const auto deadline = timeout.count() > 0 ? std::chrono::steady_clock::now() + timeout
                                              : std::chrono::steady_clock::time_point{};
    auto left = timeout;
    for (;;) {
        int ms = -1;
        if (timeout.count() >= 0) {
            const auto left_ms = std::chrono::ceil<std::chrono::milliseconds>(left);
            ms = static_cast<int>(std::clamp<std::int64_t>(left_ms.count(), 0, INT32_MAX));
        }
        // The card's count of changes not delivered is watched in the
        // same call: it signals POLLPRI (with POLLERR) when it changed.
        pollfd fds[2] = {{fd_, POLLIN, 0}, {lost_fd_, POLLPRI, 0}};
        pollfd& p = fds[0];
        int r = detail::sys().poll(fds, lost_fd_ >= 0 ? 2 : 1, ms);
        if (r < 0 && errno == EINTR) {
            if (timeout.count() > 0)  // the deadline still holds
                left = deadline - std::chrono::steady_clock::now();
            continue;
        }
        if (r < 0) {
            ec = detail::errno_code(errno);
            return false;
        }
        if (r > 0 && lost_fd_ >= 0 && fds[1].revents != 0) {
            (void)take_card_lost();
            if (--r == 0) {  // only the count changed: wait on for events
                if (timeout.count() > 0)
                    left = deadline - std::chrono::steady_clock::now();
                if (timeout.count() == 0 || left.count() <= 0)
                    return false;
                continue;
            }
        }
        if (r > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0 && (p.revents & POLLIN) == 0) {
            ec = detail::errno_code(ENODEV);
            return false;
        }
        return r > 0;
    }
}

bool line_request::wait_edge_events(std::chrono::nanoseconds timeout) const {
    check_usable("wait for edge events");
    std::error_code ec;
    const bool ready = wait_edge_events(timeout, ec);
    if (ec)
        detail::throw_errno(ec.value(), "wait for edge events on " + chip_path_);
    return ready;
}

namespace {

// The kernel's sequence numbers are 32 bits and wrap (after 2^32 events:
// some 12 hours of a 100 kHz encoder); libio's go on in 64. A number is
// taken as the one nearest to ref, so one read a little behind the highest
// (two lines' events queued in the other order than numbered) stays behind.
[[gnu::always_inline]] inline std::uint64_t unwrap(std::uint64_t ref, std::uint32_t seq) noexcept {
    const auto delta = static_cast<std::int32_t>(seq - static_cast<std::uint32_t>(ref));
    return ref + static_cast<std::uint64_t>(static_cast<std::int64_t>(delta));
}

// The kernel's event ids are io::edge's values (its ABI has no others).
static_assert(static_cast<unsigned>(edge::rising) == GPIO_V2_LINE_EVENT_RISING_EDGE &&
              static_cast<unsigned>(edge::falling) == GPIO_V2_LINE_EVENT_FALLING_EDGE);
[[gnu::always_inline]] inline edge event_kind(std::uint32_t id) noexcept {
    return static_cast<edge>(id);
}

}  // namespace

std::size_t line_request::read_edge_events(std::span<edge_event> out, std::error_code& ec) noexcept {
    ec.clear();
    if (fd_ < 0) {
        ec = detail::errno_code(EBADF);
        return 0;
    }
    constexpr std::size_t batch = 16;
    gpio_v2_line_event raw[batch];
    std::size_t stored = 0;
    std::uint64_t max_seqno = max_seqno_;
    while (stored < out.size()) {
        const std::size_t want = std::min(batch, out.size() - stored);
        const auto n = detail::retry_eintr([&] { return detail::sys().read(fd_, raw, want * sizeof raw[0]); });
        if (n < 0) {
            if (errno != EAGAIN)
                ec = detail::errno_code(errno);
            break;
        }
        if (n == 0) {
            ec = detail::errno_code(ENODEV);
            break;
        }
        // The kernel hands out whole events; a partial one means the
        // interface changed under us, and is an error, not data.
        if (static_cast<std::size_t>(n) % sizeof raw[0] != 0) {
            ec = detail::errno_code(EIO);
            break;
        }
        const auto got = static_cast<std::size_t>(n) / sizeof raw[0];
        // The first event of the request: what came before it (the kernel
        // numbers from 1) was dropped, however far it is.
        if (max_seqno == 0 && received_ == 0)
            max_seqno = static_cast<std::uint32_t>(raw[0].seqno - 1U);
        // No branch per event: what the kernel dropped is the highest
        // number read less the events read (lost_events()).
        edge_event* const dst = out.data() + stored;
        if (line_seqno_.size() == 1) {
            // One line: the kernel numbers the request's events by the
            // line's (its seqno is the line_seqno), so one unwrap does both.
            for (std::size_t i = 0; i < got; ++i) {
                const auto& r = raw[i];
                const std::uint64_t seq = unwrap(max_seqno, r.seqno);
                max_seqno = seq > max_seqno ? seq : max_seqno;
                dst[i] = edge_event{r.offset, event_kind(r.id), r.timestamp_ns, seq, seq};
            }
            line_seqno_[0] = max_seqno;
        } else {
            for (std::size_t i = 0; i < got; ++i) {
                const auto& r = raw[i];
                const std::uint64_t seq = unwrap(max_seqno, r.seqno);
                max_seqno = seq > max_seqno ? seq : max_seqno;
                std::uint64_t line_seq = r.line_seqno;
                if (const std::size_t k = position(r.offset, offsets_, index_); k < line_seqno_.size()) [[likely]] {
                    // 0: the line's first event (the kernel numbers from 1).
                    const std::uint64_t last = line_seqno_[k];
                    line_seq = last == 0 ? std::uint64_t{r.line_seqno} : unwrap(last, r.line_seqno);
                    line_seqno_[k] = line_seq;
                }
                dst[i] = edge_event{r.offset, event_kind(r.id), r.timestamp_ns, seq, line_seq};
            }
        }
        stored += got;
        received_ += got;
        if (got < want)
            break;
    }
    max_seqno_ = max_seqno;
    return stored;
}

std::size_t line_request::read_edge_events(std::span<edge_event> out) {
    check_usable("read edge events");
    std::error_code ec;
    const auto n = read_edge_events(out, ec);
    if (ec && n == 0)
        detail::throw_errno(ec.value(), "read edge events of " + chip_path_);
    return n;
}

registration on_edge_events(event_loop& loop, line_request& request,
                            std::function<void(std::span<const edge_event>, std::error_code)> cb,
                            std::size_t batch) {
    if (!cb)
        throw invalid_argument("on_edge_events: the callback is empty");
    if (batch == 0)
        throw invalid_argument("on_edge_events: the batch must hold at least one event");
    auto buffer = std::make_shared<std::vector<edge_event>>(batch);
    auto shared_cb = std::make_shared<std::function<void(std::span<const edge_event>, std::error_code)>>(std::move(cb));
    auto events = loop.watch(request.fd(), ready::in, [&loop, &request, buffer, shared_cb](readiness r) {
        auto& deliver = *shared_cb;
        std::error_code ec;
        const auto n = request.read_edge_events(*buffer, ec);
        if (n > 0) {
            deliver(std::span<const edge_event>(buffer->data(), n), {});
            // cb may have released the request, removed the registration or
            // stopped the loop: an error read before then is the next
            // wake-up's to report (a failed request stays readable).
            if (!detail::event_loop_access::keep_calling(loop) || request.released())
                return;
        }
        if (!ec && n == 0 && r.hangup())
            ec = detail::errno_code(ENODEV);
        if (ec) {
            // A failed request stays failed: stop watching it rather than
            // wake for it forever; the registration is left for the owner.
            detail::event_loop_access::unwatch_current(loop);
            deliver({}, ec);
        }
    });
    if (detail::line_request_access::card_lost_fd(request) >= 0) {
        // The card's count of changes not delivered: read when it changes.
        auto card = loop.watch(detail::line_request_access::card_lost_fd(request), ready::pri,
                               [&loop, &request, shared_cb](readiness) {
            const auto before = request.lost_events();
            if (!detail::line_request_access::take_card_lost(request))
                detail::event_loop_access::unwatch_current(loop);
            else if (request.lost_events() != before)
                (*shared_cb)({}, {});
        });
        detail::event_loop_access::link(loop, events, std::move(card));
    }
    return events;
}

}  // namespace io
