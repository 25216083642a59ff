// SPDX-License-Identifier: MIT
#include "serial_tty.hpp"

#include <asm/ioctls.h>
#include <asm/termbits.h>
#include <linux/serial.h>
#include <asm/termios.h>

#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <unistd.h>

// <sys/ioctl.h> would bring glibc's termios, which clashes with the kernel's.
extern "C" int ioctl(int fd, unsigned long request, ...) noexcept;

#ifndef SER_RS485_MODE_RS422
#define SER_RS485_MODE_RS422 (1 << 9)
#endif

namespace io::tools::iotool {

namespace {

[[noreturn]] void fail(int err, const std::string& what) {
    throw std::system_error(err, std::system_category(), what);
}

int open_tty(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        fail(errno, "open " + path);
    return fd;
}

std::string sysfs_tty(const std::string& path) {
    std::error_code ec;
    const auto real = std::filesystem::canonical(path, ec);
    return ec ? std::string{} : real.filename().string();
}

io::serial_settings decode(const termios2& t, const serial_rs485* r) {
    io::serial_settings s;
    unsigned baud = t.c_ospeed;
    if (baud < io::serial_settings::min_baud || baud > io::serial_settings::max_baud)
        throw std::range_error("baud rate " + std::to_string(baud) + (baud == 0 ? " (hang-up)" : ""));
    s.set_baud(baud);
    switch (t.c_cflag & CSIZE) {
    case CS5: s.set_data_bits(5); break;
    case CS6: s.set_data_bits(6); break;
    case CS7: s.set_data_bits(7); break;
    default: s.set_data_bits(8); break;
    }
    const bool odd = (t.c_cflag & PARODD) != 0;
    if ((t.c_cflag & PARENB) == 0)
        s.set_parity(io::parity::none);
    else if ((t.c_cflag & CMSPAR) != 0)
        s.set_parity(odd ? io::parity::mark : io::parity::space);
    else
        s.set_parity(odd ? io::parity::odd : io::parity::even);
    s.set_stop_bits((t.c_cflag & CSTOPB) != 0 ? io::stop_bits::two : io::stop_bits::one);
    if ((t.c_cflag & CRTSCTS) != 0)
        s.set_flow_control(io::flow_control::rts_cts);
    else if ((t.c_iflag & IXON) != 0 && (t.c_iflag & IXOFF) != 0)  // a cooked tty's IXON alone is not flow control
        s.set_flow_control(io::flow_control::xon_xoff);
    if (r != nullptr && (r->flags & SER_RS485_ENABLED) != 0) {
        s.set_termination((r->flags & SER_RS485_TERMINATE_BUS) != 0);
        if ((r->flags & SER_RS485_MODE_RS422) != 0) {
            s.set_mode(io::serial_mode::rs422);
        } else {
            s.set_mode(io::serial_mode::rs485)
                .set_rts_on_send((r->flags & SER_RS485_RTS_ON_SEND) != 0 ? io::rts_level::high : io::rts_level::low)
                .set_receive_during_send((r->flags & SER_RS485_RX_DURING_TX) != 0)
                .set_delay_before_send(std::chrono::milliseconds{std::min(r->delay_rts_before_send, 100U)})
                .set_delay_after_send(std::chrono::milliseconds{std::min(r->delay_rts_after_send, 100U)});
        }
    }
    return s;
}

}  // namespace

tty_state read_tty(const std::string& path) {
    const int fd = open_tty(path);
    struct closer {
        int fd;
        ~closer() { ::close(fd); }
    } close_it{fd};
    tty_state st;
    termios2 t{};
    if (::ioctl(fd, TCGETS2, &t) != 0)
        fail(errno, "open " + path + ": not a serial port");
    serial_rs485 r{};
    const bool has_rs485 = ::ioctl(fd, TIOCGRS485, &r) == 0;
    try {
        st.settings = decode(t, has_rs485 ? &r : nullptr);
    } catch (const std::exception& e) {
        st.settings_error = e.what();
    }
    int m = 0;
    if (::ioctl(fd, TIOCMGET, &m) == 0)
        st.modem = io::modem_lines{(m & TIOCM_DTR) != 0, (m & TIOCM_RTS) != 0, (m & TIOCM_CTS) != 0,
                                   (m & TIOCM_DSR) != 0, (m & TIOCM_CAR) != 0, (m & TIOCM_RNG) != 0};
    serial_icounter_struct ic{};
    if (::ioctl(fd, TIOCGICOUNT, &ic) == 0) {
        io::serial_counters c;
        c.rx = static_cast<unsigned>(ic.rx);
        c.tx = static_cast<unsigned>(ic.tx);
        c.overrun = static_cast<unsigned>(ic.overrun) + static_cast<unsigned>(ic.buf_overrun);
        c.parity = static_cast<unsigned>(ic.parity);
        c.framing = static_cast<unsigned>(ic.frame);
        c.breaks = static_cast<unsigned>(ic.brk);
        c.cts = static_cast<unsigned>(ic.cts);
        c.dsr = static_cast<unsigned>(ic.dsr);
        c.dcd = static_cast<unsigned>(ic.dcd);
        c.ri = static_cast<unsigned>(ic.rng);
        st.counters = c;
    }
    serial_struct ss{};
    if (::ioctl(fd, TIOCGSERIAL, &ss) == 0)
        st.low_latency = (static_cast<unsigned>(ss.flags) & ASYNC_LOW_LATENCY) != 0;
    if (path.rfind("/dev/pts/", 0) == 0)
        st.driver = "pty";
    const auto name = sysfs_tty(path);
    if (!name.empty()) {
        std::error_code ec;
        const auto drv = std::filesystem::read_symlink("/sys/class/tty/" + name + "/device/driver", ec);
        if (!ec)
            st.driver = drv.filename().string();
        std::ifstream lt{"/sys/class/tty/" + name + "/device/latency_timer"};
        if (int v = -1; lt >> v)
            st.latency_timer = v;
    }
    return st;
}

struct tty_keeper::saved {
    termios2 t{};
    serial_rs485 r{};
    bool has_rs485 = false;
};

tty_keeper::tty_keeper(const std::string& path) : path_{path}, fd_{open_tty(path)} {}

tty_keeper::~tty_keeper() {
    ::close(fd_);
    delete saved_;
}

void tty_keeper::capture(int port_fd) {
    auto* s = new saved;
    if (::ioctl(port_fd, TCGETS2, &s->t) != 0) {
        const int err = errno;
        delete s;
        fail(err, "read the settings of " + path_);
    }
    s->has_rs485 = ::ioctl(port_fd, TIOCGRS485, &s->r) == 0;
    delete saved_;
    saved_ = s;
}

void tty_keeper::commit() {
    if (saved_ == nullptr)
        return;
    termios2 t{};
    if (::ioctl(fd_, TCGETS2, &t) != 0)
        fail(errno, "read the settings of " + path_);
    constexpr tcflag_t cflags = CBAUD | CIBAUD | CSIZE | PARENB | PARODD | CMSPAR | CSTOPB | CRTSCTS;
    constexpr tcflag_t iflags = IXON | IXOFF | IXANY;
    t.c_cflag = (t.c_cflag & ~cflags) | (saved_->t.c_cflag & cflags);
    t.c_iflag = (t.c_iflag & ~iflags) | (saved_->t.c_iflag & iflags);
    t.c_ispeed = saved_->t.c_ispeed;
    t.c_ospeed = saved_->t.c_ospeed;
    if (::ioctl(fd_, TCSETS2, &t) != 0)
        fail(errno, "keep the settings of " + path_);
    serial_rs485 now{};
    if (saved_->has_rs485 && ::ioctl(fd_, TIOCGRS485, &now) == 0 && (now.flags != saved_->r.flags || now.delay_rts_before_send != saved_->r.delay_rts_before_send ||
                                                                 now.delay_rts_after_send != saved_->r.delay_rts_after_send)) {
        auto r = saved_->r;
        if (::ioctl(fd_, TIOCSRS485, &r) != 0)
            fail(errno, "keep the mode of " + path_);
    }
}

}  // namespace io::tools::iotool
