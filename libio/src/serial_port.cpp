// SPDX-License-Identifier: MIT
#include <io/error.hpp>
#include <io/serial_port.hpp>

#include "error.hpp"
#include "serial_codec.hpp"
#include "serial_device.hpp"
#include "sys.hpp"

// The kernel's termios structures (<asm/termbits.h> through
// serial_codec.hpp), not glibc's <termios.h>: glibc 2.36 has no termios2.
// <asm/ioctls.h> gives TCGETS2, TIOCSRS485 and friends; the TIOCM_* modem
// bits come from glibc's <sys/ioctl.h>, not the kernel's <asm/termios.h>,
// whose struct winsize and termio clash with glibc's (Debian 13's
// <sys/epoll.h>, glibc 2.41, includes <sys/ioctl.h>).
#include <asm/ioctls.h>
#include <sys/ioctl.h>
#include <linux/serial.h>
#include <linux/tty_flags.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <fcntl.h>
#include <optional>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <utility>

namespace io {

namespace {

using clock_type = std::chrono::steady_clock;

/// An ioctl whose argument is a value, not a pointer (TIOCMIWAIT, TCSBRK, TCFLSH).
void* value_arg(long v) noexcept {
    return reinterpret_cast<void*>(static_cast<std::intptr_t>(v));
}

int xioctl(int fd, unsigned long request, void* arg) noexcept {
    return detail::retry_eintr([&] { return detail::sys().ioctl(fd, request, arg); });
}

/// The errors with which a driver says it lacks an ioctl.
bool is_unsupported(int err) noexcept {
    return err == ENOTTY || err == EINVAL || err == EOPNOTSUPP || err == ENOSYS;
}

clock_type::time_point deadline_after(std::chrono::microseconds d, clock_type::time_point from) noexcept {
    // Anything beyond a year is forever, and keeps the addition from overflowing.
    if (d >= std::chrono::hours(24 * 366))
        return clock_type::time_point::max();
    return from + std::max(d, std::chrono::microseconds{0});
}

/// Waits until fd is ready for `events` or deadline passes: true when ready
/// (or hung up, which the next read or write reports); false when the
/// deadline passed (ec clear) or the wait failed (ec says why).
bool wait_ready(int fd, short events, clock_type::time_point deadline, std::error_code& ec) noexcept {
    for (;;) {
        pollfd p{fd, events, 0};
        timespec ts{};
        const timespec* limit = nullptr;
        if (deadline != clock_type::time_point::max()) {
            const auto left = std::max(deadline - clock_type::now(), clock_type::duration::zero());
            const auto s = std::chrono::duration_cast<std::chrono::seconds>(left);
            ts.tv_sec = static_cast<time_t>(s.count());
            ts.tv_nsec = static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(left - s).count());
            limit = &ts;
        }
        const int r = detail::sys().ppoll(&p, 1, limit, nullptr);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ec = detail::errno_code(errno);
            return false;
        }
        if (r == 0) {
            if (clock_type::now() >= deadline)
                return false;
            continue;
        }
        if ((p.revents & POLLNVAL) != 0) {
            ec = detail::errno_code(EBADF);
            return false;
        }
        return true;
    }
}

modem_lines decode_modem(int m) noexcept {
    modem_lines l;
    l.dtr = (m & TIOCM_DTR) != 0;
    l.rts = (m & TIOCM_RTS) != 0;
    l.cts = (m & TIOCM_CTS) != 0;
    l.dsr = (m & TIOCM_DSR) != 0;
    l.dcd = (m & TIOCM_CAR) != 0;
    l.ri = (m & TIOCM_RNG) != 0;
    return l;
}

serial_counters decode_counters(const serial_icounter_struct& ic) noexcept {
    const auto u = [](int v) { return static_cast<std::uint64_t>(static_cast<unsigned>(v)); };
    serial_counters c;
    c.rx = u(ic.rx);
    c.tx = u(ic.tx);
    c.overrun = u(ic.overrun) + u(ic.buf_overrun);
    c.parity = u(ic.parity);
    c.framing = u(ic.frame);
    c.breaks = u(ic.brk);
    c.cts = u(ic.cts);
    c.dsr = u(ic.dsr);
    c.dcd = u(ic.dcd);
    c.ri = u(ic.rng);
    return c;
}

/// The settings t and r describe, read back as they are (no range checks).
serial_settings decode_settings(const termios2& t, const std::optional<serial_rs485>& r) noexcept {
    return detail::decode_rs485(r.value_or(serial_rs485{}), detail::decode_termios(t, {}));
}

[[noreturn]] void throw_busy(const std::filesystem::path& path, const std::string& holders) {
    detail::throw_errno(EBUSY, "open " + path.string() + ": in use by " +
                                   (holders.empty() ? std::string("another process") : holders));
}

/// An open tty: its descriptor (closed with the object unless released),
/// device numbers and termios as found.
struct tty_fd {
    int fd = -1;
    struct stat st {};
    termios2 termios{};

    tty_fd() = default;
    tty_fd(const tty_fd&) = delete;
    tty_fd& operator=(const tty_fd&) = delete;
    ~tty_fd() {
        if (fd >= 0)
            detail::sys().close(fd);
    }
    int release() noexcept { return std::exchange(fd, -1); }
};

/// Opens path non-blocking, without becoming its controlling terminal.
/// Throws "open PATH: in use by ..." (EBUSY), "open PATH: not a serial port".
void open_tty(const std::filesystem::path& path, tty_fd& tty) {
    const int fd = detail::retry_eintr(
        [&] { return detail::sys().open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0); });
    if (fd < 0) {
        const int err = errno;
        struct stat st {};
        if (err == EBUSY && ::stat(path.c_str(), &st) == 0)
            throw_busy(path, detail::open_holders(st.st_rdev));
        detail::throw_errno(err, "open " + path.string());
    }
    tty.fd = fd;
    if (detail::sys().fstat(fd, &tty.st) != 0 || xioctl(fd, TCGETS2, &tty.termios) != 0) {
        const int err = errno;
        detail::throw_errno(err, "open " + path.string() + ": not a serial port");
    }
}

}  // namespace

struct serial_port::impl {
    int fd = -1;
    std::filesystem::path path;
    std::string name;  // in /sys/class/tty, "" for ptys
    std::string driver;
    serial_access access = serial_access::exclusive;
    bool control = false;  // opened with control_only: nothing applied, nothing to restore

    // What the port had before we came, put back at close.
    termios2 saved_termios{};
    std::optional<serial_rs485> saved_rs485;
    bool rs485_changed = false;
    std::optional<int> saved_serial_flags;
    long saved_latency_timer = -1;
    bool keep_settings = false;  // keep_settings_on_close()

    std::string where() const { return path.string(); }

    [[noreturn]] void fail(int err, const std::string& what) const {
        detail::throw_errno(err, what + " " + where());
    }

    /// Refuses what a port opened for control only must not do.
    void not_control(const char* what) const {
        if (control)
            throw usage_error(std::string("serial_port: ") + what + " on " + where() +
                              ", opened for control only (modem lines and counters)");
    }

    termios2 get_termios() const {
        termios2 t{};
        if (xioctl(fd, TCGETS2, &t) != 0)
            fail(errno, "get termios of");
        return t;
    }

    void set_termios(const termios2& t) const {
        auto copy = t;
        if (xioctl(fd, TCSETS2, &copy) != 0)
            fail(errno, "set termios on");
    }

    std::optional<serial_rs485> get_rs485() const {
        serial_rs485 r{};
        if (xioctl(fd, TIOCGRS485, &r) != 0)
            return std::nullopt;
        return r;
    }

    /// Sets the mode and returns what the driver wrote back.
    serial_rs485 set_mode(const serial_settings& s) {
        const auto current = get_rs485();
        auto r = detail::encode_rs485(s);
        if (s.mode() == serial_mode::rs232) {
            // A driver without RS-485 is RS-232 only; one with it may need it off.
            if (!current || (current->flags & SER_RS485_ENABLED) == 0)
                return current.value_or(serial_rs485{});
        }
        if (xioctl(fd, TIOCSRS485, &r) != 0) {
            const int err = errno;
            if (is_unsupported(err))
                detail::throw_errno(err, std::string("RS-485 not supported by driver ") + driver + " on " + where() +
                                             (s.mode() == serial_mode::rs422 ? " (mode rs422 needs it)" : ""));
            fail(err, std::string("set mode ") + to_string(s.mode()) + " on");
        }
        rs485_changed = true;
        const bool enabled = (r.flags & SER_RS485_ENABLED) != 0;
        const bool rs422 = (r.flags & SER_RS485_MODE_RS422) != 0;
        if (s.mode() == serial_mode::rs485 && (!enabled || rs422))
            refuse_mode("RS-485");
        if (s.mode() == serial_mode::rs422 && (!enabled || !rs422))
            refuse_mode("RS-422");
        return r;
    }

    [[noreturn]] void refuse_mode(const char* mode) {
        if (saved_rs485) {
            auto back = *saved_rs485;
            (void)xioctl(fd, TIOCSRS485, &back);
        }
        detail::throw_errno(EOPNOTSUPP,
                            std::string(mode) + " not supported by driver " + driver + " on " + where() +
                                " (TIOCSRS485 accepted the request but did not enable it)");
    }

    serial_settings apply(const serial_settings& s) {
        s.validate();
        const auto before = get_termios();
        auto t = before;
        detail::encode_termios(s, t);
        try {
            auto request = t;
            if (xioctl(fd, TCSETS2, &request) != 0)
                fail(errno, "set " + to_string(s) + " on");
            const auto got = get_termios();
            const auto baud = detail::decode_baud(got);
            const auto want = s.baud();
            const auto off = baud > want ? baud - want : want - baud;
            if (static_cast<std::uint64_t>(off) * 100 > static_cast<std::uint64_t>(want) * 3)
                detail::throw_errno(EINVAL, "set baud " + std::to_string(want) + " on " + where() + ": driver " +
                                                driver + " keeps " + std::to_string(baud));
            const auto mode = set_mode(s);
            return detail::decode_rs485(mode, detail::decode_termios(got, s));
        } catch (...) {
            auto back = before;
            (void)xioctl(fd, TCSETS2, &back);
            throw;
        }
    }

    serial_struct get_serial(const char* what) const {
        serial_struct ss{};
        if (xioctl(fd, TIOCGSERIAL, &ss) != 0) {
            const int err = errno;
            if (is_unsupported(err))
                detail::throw_errno(err, std::string(what) + " not supported by driver " + driver + " on " + where());
            fail(err, "get serial info of");
        }
        return ss;
    }

    void set_serial_flags(int flags) {
        auto ss = get_serial("low latency");
        if (!saved_serial_flags)
            saved_serial_flags = ss.flags;
        ss.flags = flags;
        if (xioctl(fd, TIOCSSERIAL, &ss) != 0)
            fail(errno, "set serial flags of");
    }

    /// The latency timer outside low-latency mode: what it was, else 16 ms.
    long normal_latency_timer() const noexcept {
        return saved_latency_timer >= 1 && saved_latency_timer <= 255 ? saved_latency_timer : 16;
    }

    /// Puts everything back; the first error that is not a removed device.
    int restore() noexcept {
        if (control)
            return 0;  // nothing was changed, and the owner's settings are the owner's
        int first = 0;
        const auto note = [&first](int r) {
            if (r != 0 && first == 0 && !is_device_removed(detail::errno_code(errno)))
                first = errno;
        };
        auto t = saved_termios;
        if (keep_settings) {
            termios2 now{};
            if (xioctl(fd, TCGETS2, &now) == 0)
                t = detail::keep_line_settings(saved_termios, now);
            else
                note(-1);
        }
        note(xioctl(fd, TCSETS2, &t));
        if (rs485_changed && saved_rs485 && !keep_settings) {
            auto r = *saved_rs485;
            note(xioctl(fd, TIOCSRS485, &r));
        }
        if (saved_serial_flags) {
            serial_struct ss{};
            if (xioctl(fd, TIOCGSERIAL, &ss) == 0 && ss.flags != *saved_serial_flags) {
                ss.flags = *saved_serial_flags;
                note(xioctl(fd, TIOCSSERIAL, &ss));
            }
        }
        // After the flags: ftdi_sio keeps 1 ms when ASYNC_LOW_LATENCY goes.
        // A saved value outside 1..255 (QEMU's FT232 reports 0) becomes the
        // chip's default of 16 ms.
        if (saved_latency_timer >= 0) {
            const long value = normal_latency_timer();
            if (const auto attr = detail::tty_attribute(name, "latency_timer");
                attr && detail::read_attribute(*attr) != value && !detail::write_attribute(*attr, value) &&
                first == 0)
                first = errno;  // a sysfs EIO is the attribute's failure, not a removed device
        }
        if (access == serial_access::exclusive)
            (void)xioctl(fd, TIOCNXCL, nullptr);
        return first;
    }
};

serial_port::serial_port(const std::filesystem::path& path, const serial_settings& settings, serial_access access) {
    settings.validate();
    auto p = std::make_unique<impl>();
    p->path = path;
    p->access = access;
    p->name = detail::tty_name(path);

    tty_fd tty;
    open_tty(path, tty);
    const auto& st = tty.st;
    p->driver = detail::tty_driver(p->name, st.st_rdev);
    p->saved_termios = tty.termios;
    const int fd = tty.release();
    p->fd = fd;
    const auto give_up = [&p] {
        detail::sys().close(p->fd);
        p->fd = -1;
    };

    if (access == serial_access::exclusive) {
        // TIOCEXCL set by another holder does not stop root's open: ask.
        int excl = 0;
        if (xioctl(fd, TIOCGEXCL, &excl) == 0 && excl != 0) {
            give_up();
            throw_busy(path, detail::open_holders(st.st_rdev));
        }
        if (detail::retry_eintr([&] { return detail::sys().flock(fd, LOCK_EX | LOCK_NB); }) != 0) {
            const int err = errno;
            give_up();
            if (err == EWOULDBLOCK) {
                auto holders = detail::lock_holders(st.st_dev, st.st_ino);
                throw_busy(path, holders.empty() ? detail::open_holders(st.st_rdev) : holders);
            }
            detail::throw_errno(err, "lock " + path.string());
        }
        if (xioctl(fd, TIOCEXCL, nullptr) != 0) {
            const int err = errno;
            give_up();
            detail::throw_errno(err, "set exclusive mode on " + path.string());
        }
    }
    p->saved_rs485 = p->get_rs485();

    try {
        p->apply(settings);
    } catch (...) {
        (void)p->restore();
        give_up();
        throw;
    }
    impl_ = std::move(p);
}

serial_port::~serial_port() {
    if (impl_ && impl_->fd >= 0) {
        (void)impl_->restore();
        detail::sys().close(impl_->fd);
    }
}

std::filesystem::path serial_port_path(const card_info& card, unsigned index) {
    for (const auto& p : card.serial_ports)
        if (p.index == index)
            return p.path;
    // The indexes as udev numbered them: usually 0..N-1, with gaps where a
    // port went away.
    std::string have;
    for (std::size_t i = 0; i < card.serial_ports.size(); ++i) {
        const auto first = card.serial_ports[i].index;
        auto last = first;
        while (i + 1 < card.serial_ports.size() && card.serial_ports[i + 1].index == last + 1)
            last = card.serial_ports[++i].index;
        have += (have.empty() ? "" : ", ") + std::to_string(first) +
                (last != first ? ".." + std::to_string(last) : std::string{});
    }
    throw invalid_argument("card " + card.label + " (" + card.model + " at " + card.location + ") has " +
                           (have.empty() ? std::string("no serial ports") : "serial ports " + have) + "; port " +
                           std::to_string(index) + " does not exist");
}

serial_port::serial_port(const card_info& card, unsigned index, const serial_settings& settings,
                         serial_access access)
    : serial_port(serial_port_path(card, index), settings, access) {}

serial_port::serial_port(const std::filesystem::path& path, control_only_t) {
    auto p = std::make_unique<impl>();
    p->path = path;
    p->access = serial_access::shared;
    p->control = true;
    p->name = detail::tty_name(path);
    tty_fd tty;
    open_tty(path, tty);
    p->driver = detail::tty_driver(p->name, tty.st.st_rdev);
    p->saved_termios = tty.termios;
    p->fd = tty.release();
    impl_ = std::move(p);
}

serial_port::serial_port(serial_port&& other) noexcept = default;

serial_port& serial_port::operator=(serial_port&& other) noexcept {
    if (this != &other) {
        if (impl_ && impl_->fd >= 0) {
            (void)impl_->restore();
            detail::sys().close(impl_->fd);
        }
        impl_ = std::move(other.impl_);
    }
    return *this;
}

serial_port::impl& serial_port::state() const {
    if (!impl_ || impl_->fd < 0)
        throw usage_error("serial_port: used after close() or a move");
    return *impl_;
}

void serial_port::close() {
    if (!impl_ || impl_->fd < 0)
        return;
    const int err = impl_->restore();
    detail::sys().close(impl_->fd);
    impl_->fd = -1;
    if (err != 0)
        detail::throw_errno(err, "restore the previous settings of " + impl_->where());
}

void serial_port::keep_settings_on_close(bool keep) {
    state().not_control("keep_settings_on_close");
    state().keep_settings = keep;
}

bool serial_port::is_open() const noexcept {
    return impl_ && impl_->fd >= 0;
}

int serial_port::fd() const noexcept {
    return impl_ ? impl_->fd : -1;
}

const std::filesystem::path& serial_port::path() const {
    return state().path;
}

const std::string& serial_port::driver() const {
    return state().driver;
}

serial_settings serial_port::apply(const serial_settings& s) {
    state().not_control("apply settings");
    return state().apply(s);
}

serial_settings serial_port::settings() const {
    auto& st = state();
    return decode_settings(st.get_termios(), st.get_rs485());
}

void serial_port::set_low_latency(bool on) {
    auto& st = state();
    st.not_control("set low latency");
    const auto ss = st.get_serial("low latency");
    // The timer as the port had it, read before ASYNC_LOW_LATENCY changes it.
    const auto attr = detail::tty_attribute(st.name, "latency_timer");
    if (attr && st.saved_latency_timer < 0) {
        st.saved_latency_timer = detail::read_attribute(*attr);
        if (st.saved_latency_timer < 0)
            st.fail(errno, "read " + attr->string() + " of");
    }
    const int flags = on ? (ss.flags | static_cast<int>(ASYNC_LOW_LATENCY))
                         : (ss.flags & ~static_cast<int>(ASYNC_LOW_LATENCY));
    if (flags != ss.flags)
        st.set_serial_flags(flags);

    // ftdi_sio follows ASYNC_LOW_LATENCY with its latency timer itself (and
    // keeps 1 ms after it goes); the attribute is checked and set so that the
    // timer agrees with the mode either way.
    if (!attr)
        return;
    const long now = detail::read_attribute(*attr);
    if (now < 0)
        st.fail(errno, "read " + attr->string() + " of");
    const long want = on ? 1 : st.normal_latency_timer();
    if (now != want && !detail::write_attribute(*attr, want))
        st.fail(errno, "set latency_timer (" + attr->string() + ") to " + std::to_string(want) + " ms on");
}

bool serial_port::low_latency() const {
    return (state().get_serial("low latency").flags & static_cast<int>(ASYNC_LOW_LATENCY)) != 0;
}

int serial_port::latency_timer() const {
    const auto attr = detail::tty_attribute(state().name, "latency_timer");
    if (!attr)
        return -1;
    const long v = detail::read_attribute(*attr);
    if (v < 0)
        state().fail(errno, "read " + attr->string() + " of");
    return static_cast<int>(v);
}

modem_lines serial_port::modem() const {
    auto& st = state();
    int m = 0;
    if (xioctl(st.fd, TIOCMGET, &m) != 0)
        st.fail(errno, "get modem lines of");
    return decode_modem(m);
}

void serial_port::set_dtr(bool on) {
    auto& st = state();
    int bit = TIOCM_DTR;
    if (xioctl(st.fd, on ? TIOCMBIS : TIOCMBIC, &bit) != 0)
        st.fail(errno, on ? "set DTR on" : "clear DTR on");
}

void serial_port::set_rts(bool on) {
    auto& st = state();
    int bit = TIOCM_RTS;
    if (xioctl(st.fd, on ? TIOCMBIS : TIOCMBIC, &bit) != 0)
        st.fail(errno, on ? "set RTS on" : "clear RTS on");
}

namespace {

int modem_mask(const modem_lines& which) noexcept {
    return (which.cts ? TIOCM_CTS : 0) | (which.dsr ? TIOCM_DSR : 0) | (which.dcd ? TIOCM_CAR : 0) |
           (which.ri ? TIOCM_RNG : 0);
}

}  // namespace

modem_lines serial_port::wait_modem_change(const modem_lines& which) {
    if (modem_mask(which) == 0)
        throw invalid_argument("wait_modem_change: which marks no input line; allowed cts, dsr, dcd, ri");
    auto& st = state();
    std::error_code ec;
    const auto lines = wait_modem_change(which, ec);
    if (ec)
        st.fail(ec.value(), "wait for a modem line change on");
    return lines;
}

modem_lines serial_port::wait_modem_change(const modem_lines& which, std::error_code& ec) noexcept {
    ec.clear();
    if (!is_open()) {
        ec = std::make_error_code(std::errc::bad_file_descriptor);
        return {};
    }
    const int mask = modem_mask(which);
    if (mask == 0) {
        ec = std::make_error_code(std::errc::invalid_argument);
        return {};
    }
    // No EINTR retry: a signal is the only way to end this wait early.
    if (detail::sys().ioctl(impl_->fd, TIOCMIWAIT, value_arg(mask)) != 0) {
        ec = detail::errno_code(errno);
        return {};
    }
    int m = 0;
    if (xioctl(impl_->fd, TIOCMGET, &m) != 0) {
        ec = detail::errno_code(errno);
        return {};
    }
    return decode_modem(m);
}

void serial_port::send_break(std::chrono::milliseconds duration) {
    set_break(true);
    std::this_thread::sleep_for(duration);
    set_break(false);
}

void serial_port::set_break(bool on) {
    auto& st = state();
    st.not_control("break");
    if (xioctl(st.fd, on ? TIOCSBRK : TIOCCBRK, nullptr) != 0)
        st.fail(errno, on ? "start a break on" : "end a break on");
}

void serial_port::drain() {
    auto& st = state();
    st.not_control("drain");
    // TCSBRK with a non-zero argument is tcdrain().
    if (xioctl(st.fd, TCSBRK, value_arg(1)) != 0)
        st.fail(errno, "drain");
}

void serial_port::flush(serial_queue q) {
    auto& st = state();
    st.not_control("flush");
    const long which = q == serial_queue::input ? TCIFLUSH : q == serial_queue::output ? TCOFLUSH : TCIOFLUSH;
    if (xioctl(st.fd, TCFLSH, value_arg(which)) != 0)
        st.fail(errno, "flush");
}

std::size_t serial_port::available() const {
    auto& st = state();
    int n = 0;
    if (xioctl(st.fd, FIONREAD, &n) != 0)
        st.fail(errno, "count the bytes waiting on");
    return static_cast<std::size_t>(n);
}

serial_counters serial_port::counters() const {
    auto& st = state();
    serial_icounter_struct ic{};
    if (xioctl(st.fd, TIOCGICOUNT, &ic) != 0) {
        const int err = errno;
        if (is_unsupported(err))
            detail::throw_errno(err, "error counters not supported by driver " + st.driver + " on " + st.where());
        st.fail(err, "get the counters of");
    }
    return decode_counters(ic);
}

std::size_t serial_port::read_some(std::span<std::byte> buf, std::chrono::microseconds timeout) {
    auto& st = state();
    st.not_control("read");
    std::error_code ec;
    const auto n = read_some(buf, timeout, ec);
    if (ec)
        st.fail(ec.value(), "read");
    return n;
}

std::size_t serial_port::read_some(std::span<std::byte> buf, std::chrono::microseconds timeout,
                                   std::error_code& ec) noexcept {
    ec.clear();
    if (!is_open()) {
        ec = std::make_error_code(std::errc::bad_file_descriptor);
        return 0;
    }
    if (impl_->control) {
        ec = std::make_error_code(std::errc::operation_not_permitted);
        return 0;
    }
    if (buf.empty())
        return 0;
    const int fd = impl_->fd;
    const auto deadline = deadline_after(timeout, clock_type::now());
    for (;;) {
        const auto n = detail::sys().read(fd, buf.data(), buf.size());
        if (n > 0)
            return static_cast<std::size_t>(n);
        if (n == 0) {
            ec = detail::errno_code(ENODEV);  // a hung-up tty reads as end of file
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            ec = detail::errno_code(errno);
            return 0;
        }
        if (!wait_ready(fd, POLLIN, deadline, ec))
            return 0;
    }
}

std::size_t serial_port::read(std::span<std::byte> buf, const read_timeouts& t) {
    auto& st = state();
    st.not_control("read");
    std::error_code ec;
    const auto n = read(buf, t, ec);
    if (ec)
        st.fail(ec.value(), "read");
    return n;
}

std::size_t serial_port::read(std::span<std::byte> buf, const read_timeouts& t, std::error_code& ec) noexcept {
    ec.clear();
    if (!is_open()) {
        ec = std::make_error_code(std::errc::bad_file_descriptor);
        return 0;
    }
    if (impl_->control) {
        ec = std::make_error_code(std::errc::operation_not_permitted);
        return 0;
    }
    const int fd = impl_->fd;
    const auto total_end = deadline_after(t.total, clock_type::now());
    const bool gap = t.inter_byte.count() > 0;
    clock_type::time_point last{};
    std::size_t got = 0;
    while (got < buf.size()) {
        const auto n = detail::sys().read(fd, buf.data() + got, buf.size() - got);
        if (n > 0) {
            got += static_cast<std::size_t>(n);
            last = clock_type::now();
            continue;
        }
        if (n == 0) {
            ec = detail::errno_code(ENODEV);
            return got;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            ec = detail::errno_code(errno);
            return got;
        }
        auto end = total_end;
        if (got > 0 && gap)
            end = std::min(end, deadline_after(t.inter_byte, last));
        if (!wait_ready(fd, POLLIN, end, ec))
            return got;
    }
    return got;
}

std::size_t serial_port::write(std::span<const std::byte> data, std::chrono::microseconds timeout) {
    auto& st = state();
    st.not_control("write");
    std::error_code ec;
    const auto n = write(data, timeout, ec);
    if (ec)
        detail::throw_errno(ec.value(), "write " + st.where() + " (" + std::to_string(n) + " of " +
                                            std::to_string(data.size()) + " bytes written)");
    return n;
}

std::size_t serial_port::write(std::span<const std::byte> data, std::chrono::microseconds timeout,
                               std::error_code& ec) noexcept {
    ec.clear();
    if (!is_open()) {
        ec = std::make_error_code(std::errc::bad_file_descriptor);
        return 0;
    }
    if (impl_->control) {
        ec = std::make_error_code(std::errc::operation_not_permitted);
        return 0;
    }
    const int fd = impl_->fd;
    const auto deadline = deadline_after(timeout, clock_type::now());
    std::size_t done = 0;
    while (done < data.size()) {
        const auto n = detail::sys().write(fd, data.data() + done, data.size() - done);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN) {
            ec = detail::errno_code(errno);
            return done;
        }
        if (!wait_ready(fd, POLLOUT, deadline, ec))
            return done;
    }
    return done;
}

serial_status inspect_serial(const std::filesystem::path& path) {
    tty_fd tty;
    open_tty(path, tty);
    const int fd = tty.fd;
    serial_status out;
    out.path = path;
    const auto name = detail::tty_name(path);
    out.driver = detail::tty_driver(name, tty.st.st_rdev);

    std::optional<serial_rs485> rs485;
    if (serial_rs485 r{}; xioctl(fd, TIOCGRS485, &r) == 0)
        rs485 = r;
    const auto settings = decode_settings(tty.termios, rs485);
    if (settings.baud() == 0) {
        out.settings_error = "baud rate 0 (hang-up)";
    } else {
        try {
            settings.validate();
            out.settings = settings;
        } catch (const invalid_argument& e) {
            out.settings_error = e.what();
        }
    }
    if (int m = 0; xioctl(fd, TIOCMGET, &m) == 0)
        out.modem = decode_modem(m);
    if (serial_icounter_struct ic{}; xioctl(fd, TIOCGICOUNT, &ic) == 0)
        out.counters = decode_counters(ic);
    if (serial_struct ss{}; xioctl(fd, TIOCGSERIAL, &ss) == 0)
        out.low_latency = (ss.flags & static_cast<int>(ASYNC_LOW_LATENCY)) != 0;
    if (const auto attr = detail::tty_attribute(name, "latency_timer"))
        out.latency_timer = static_cast<int>(detail::read_attribute(*attr));  // -1 when unreadable
    return out;
}

}  // namespace io
