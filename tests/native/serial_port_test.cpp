// SPDX-License-Identifier: MIT
// io::serial_port over pty pairs: the test holds the master (the far end of
// the cable), the port under test is the slave. Everything a pty supports is
// proven here; what needs a UART is in tests/vm/serial_port_test.cpp.
#include "sys.hpp"
#include "wait_log.hpp"

#include <io/error.hpp>
#include <io/event_loop.hpp>
#include <io/serial_port.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <numeric>
#include <string>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using io::serial_port;
using io::serial_settings;

// Timeouts: a timeout never ends early (timed here), and no wait libio
// asks of the kernel reaches past its deadline (io::test::wait_log, exact
// under any load). How late the scheduler then wakes it is a benchmark's
// business, not a test's.

std::span<std::byte> bytes(std::vector<std::uint8_t>& v) {
    return std::as_writable_bytes(std::span{v});
}
std::span<const std::byte> bytes(const std::vector<std::uint8_t>& v) {
    return std::as_bytes(std::span{v});
}

std::vector<std::uint8_t> counting(std::size_t n, std::uint8_t from = 0) {
    std::vector<std::uint8_t> v(n);
    std::iota(v.begin(), v.end(), from);
    return v;
}

std::chrono::milliseconds ms_since(clock_type::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t);
}

/// A pty pair; the master is raw and blocking.
class pty {
public:
    pty() : master_{::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)} {
        if (master_ < 0 || ::grantpt(master_) != 0 || ::unlockpt(master_) != 0)
            throw std::system_error(errno, std::system_category(), "posix_openpt");
        slave_ = ::ptsname(master_);
    }
    ~pty() {
        if (master_ >= 0)
            ::close(master_);
    }
    pty(const pty&) = delete;
    pty& operator=(const pty&) = delete;

    const std::string& slave() const { return slave_; }
    int master() const { return master_; }
    void hang_up() {
        ::close(master_);
        master_ = -1;
    }

    void send(const std::vector<std::uint8_t>& data) const {
        std::size_t done = 0;
        while (done < data.size()) {
            const auto n = ::write(master_, data.data() + done, data.size() - done);
            if (n <= 0)
                throw std::system_error(errno, std::system_category(), "write to the pty master");
            done += static_cast<std::size_t>(n);
        }
    }

    /// Reads n bytes from the master, giving up after `quiet` without data.
    std::vector<std::uint8_t> receive(std::size_t n, std::chrono::milliseconds quiet = 2000ms) const {
        std::vector<std::uint8_t> got;
        std::array<std::uint8_t, 4096> buf{};
        while (got.size() < n) {
            pollfd p{master_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(quiet.count())) != 1)
                break;
            const auto r = ::read(master_, buf.data(), std::min(buf.size(), n - got.size()));
            if (r <= 0)
                break;
            got.insert(got.end(), buf.begin(), buf.begin() + r);
        }
        return got;
    }

private:
    int master_;
    std::string slave_;
};

/// The slave's termios as glibc sees it, through a separate descriptor: an
/// independent view of what libio set.
termios glibc_view(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    termios t{};
    if (fd < 0 || ::tcgetattr(fd, &t) != 0)
        ADD_FAILURE() << "tcgetattr " << path << ": " << std::strerror(errno);
    if (fd >= 0)
        ::close(fd);
    return t;
}

/// The std::system_error that fn throws; fails the test when none.
template <typename Fn>
std::system_error caught(Fn&& fn) {
    try {
        fn();
    } catch (const std::system_error& e) {
        return e;
    }
    ADD_FAILURE() << "no std::system_error was thrown";
    return std::system_error(std::error_code{}, "");
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

class serial_port_pty : public ::testing::Test {
protected:
    pty pty_;
};

// --- settings ---------------------------------------------------------------

TEST_F(serial_port_pty, open_applies_settings_and_reads_them_back) {
    const auto want = serial_settings{}.set_baud(9600).set_flow_control(io::flow_control::rts_cts);
    serial_port port{pty_.slave(), want};
    EXPECT_EQ(port.settings(), want);
    EXPECT_EQ(port.driver(), "pty");
    EXPECT_EQ(port.path(), pty_.slave());

    const auto t = glibc_view(pty_.slave());
    EXPECT_EQ(::cfgetospeed(&t), static_cast<speed_t>(B9600));
    EXPECT_NE(t.c_cflag & CRTSCTS, 0U);
    EXPECT_NE(t.c_cflag & CLOCAL, 0U);
    EXPECT_EQ(t.c_lflag & (ICANON | ECHO | ISIG), 0U) << "raw mode";
    EXPECT_EQ(t.c_oflag & OPOST, 0U);
}

TEST_F(serial_port_pty, arbitrary_baud_rates_go_through_bother) {
    serial_port port{pty_.slave()};
    for (const std::uint32_t baud : {250000U, 31250U, 1234567U, 3000000U, 50U}) {
        const auto got = port.apply(serial_settings{}.set_baud(baud));
        EXPECT_EQ(got.baud(), baud);
        EXPECT_EQ(port.settings().baud(), baud);
    }
}

TEST_F(serial_port_pty, flow_control_and_stop_bits_read_back) {
    serial_port port{pty_.slave()};
    const auto x = port.apply(serial_settings{}.set_flow_control(io::flow_control::xon_xoff).set_stop_bits(io::stop_bits::two));
    EXPECT_EQ(x.flow_control(), io::flow_control::xon_xoff);
    EXPECT_EQ(x.stop_bits(), io::stop_bits::two);
    const auto t = glibc_view(pty_.slave());
    EXPECT_EQ(t.c_iflag & (IXON | IXOFF), static_cast<tcflag_t>(IXON | IXOFF));
    EXPECT_NE(t.c_cflag & CSTOPB, 0U);
    EXPECT_EQ(port.apply(serial_settings{}).flow_control(), io::flow_control::none);
}

TEST_F(serial_port_pty, the_read_back_shows_what_the_driver_accepted) {
    // A pty carries 8-bit bytes without parity whatever it is asked: the
    // kernel's pty_set_termios forces CS8 and clears PARENB.
    serial_port port{pty_.slave()};
    const auto asked = serial_settings{}.set_data_bits(7).set_parity(io::parity::mark).set_stop_bits(io::stop_bits::two);
    const auto got = port.apply(asked);
    EXPECT_EQ(got.data_bits(), 8U);
    EXPECT_EQ(got.parity(), io::parity::none);
    EXPECT_EQ(got.stop_bits(), io::stop_bits::two);
    EXPECT_EQ(port.settings(), got);
}

TEST_F(serial_port_pty, invalid_settings_are_refused_before_the_port_is_touched) {
    const auto before = glibc_view(pty_.slave());
    const auto bad = serial_settings{}.set_mode(io::serial_mode::rs485).set_flow_control(io::flow_control::rts_cts);
    try {
        serial_port port{pty_.slave(), bad};
        FAIL() << "opened with invalid settings";
    } catch (const io::invalid_argument& e) {
        EXPECT_TRUE(contains(e.what(), "flow_control rts_cts is not allowed with mode rs485")) << e.what();
    }
    const auto after = glibc_view(pty_.slave());
    EXPECT_EQ(std::memcmp(&before, &after, sizeof before), 0);
    serial_port port{pty_.slave()};
    EXPECT_THROW(port.apply(bad), io::invalid_argument);
}

TEST_F(serial_port_pty, rs485_is_refused_with_the_driver_named) {
    serial_port port{pty_.slave(), serial_settings{}.set_baud(19200)};
    for (const auto mode : {io::serial_mode::rs485, io::serial_mode::rs422}) {
        const auto e = caught([&] { port.apply(serial_settings{}.set_baud(57600).set_mode(mode)); });
        EXPECT_EQ(e.code(), std::error_code(ENOTTY, std::system_category()));
        EXPECT_TRUE(contains(e.what(), "RS-485 not supported by driver pty on " + pty_.slave())) << e.what();
        EXPECT_EQ(port.settings().baud(), 19200U) << "a failed apply puts the previous settings back";
    }
    EXPECT_EQ(port.apply(serial_settings{}.set_mode(io::serial_mode::rs232)).mode(), io::serial_mode::rs232);
    port.close();
    const auto e = caught([&] { serial_port{pty_.slave(), serial_settings{}.set_mode(io::serial_mode::rs485)}; });
    EXPECT_TRUE(contains(e.what(), "RS-485 not supported by driver pty")) << e.what();
}

// --- open, exclusivity, close -------------------------------------------------

TEST_F(serial_port_pty, previous_termios_is_restored_on_close) {
    const int fd = ::open(pty_.slave().c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    termios orig{};
    ASSERT_EQ(::tcgetattr(fd, &orig), 0);
    orig.c_lflag |= ICANON | ECHO;
    orig.c_cflag = (orig.c_cflag & ~static_cast<tcflag_t>(CSIZE)) | CS8 | HUPCL;
    ::cfsetspeed(&orig, B4800);
    ASSERT_EQ(::tcsetattr(fd, TCSANOW, &orig), 0);
    ASSERT_EQ(::tcgetattr(fd, &orig), 0);

    const auto same_as_orig = [&] {
        termios now{};
        EXPECT_EQ(::tcgetattr(fd, &now), 0);
        return now.c_iflag == orig.c_iflag && now.c_oflag == orig.c_oflag && now.c_cflag == orig.c_cflag &&
               now.c_lflag == orig.c_lflag && std::equal(std::begin(now.c_cc), std::end(now.c_cc), orig.c_cc);
    };
    {
        serial_port port{pty_.slave(), serial_settings{}.set_baud(250000).set_flow_control(io::flow_control::xon_xoff),
                         io::serial_access::shared};
        EXPECT_FALSE(same_as_orig());
    }
    EXPECT_TRUE(same_as_orig()) << "the destructor restores";
    {
        serial_port port{pty_.slave(), serial_settings{}.set_baud(1200), io::serial_access::shared};
        port.close();
        EXPECT_TRUE(same_as_orig()) << "close() restores";
        EXPECT_FALSE(port.is_open());
        EXPECT_EQ(port.fd(), -1);
        EXPECT_NO_THROW(port.close()) << "close() is idempotent";
    }
    ::close(fd);
}

/// Sets the pty slave through fd to a cooked 4800 baud, 2 stop bits,
/// XON/XOFF, echo and line editing on: unlike anything libio sets.
termios make_cooked(int fd) {
    termios t{};
    EXPECT_EQ(::tcgetattr(fd, &t), 0);
    t.c_lflag |= ICANON | ECHO | ISIG;
    t.c_oflag |= OPOST;
    t.c_iflag |= IXON | IXOFF | ICRNL;
    t.c_cflag = (t.c_cflag & ~static_cast<tcflag_t>(CSIZE | CLOCAL)) | CS8 | CSTOPB | HUPCL;
    ::cfsetspeed(&t, B4800);
    EXPECT_EQ(::tcsetattr(fd, TCSANOW, &t), 0);
    EXPECT_EQ(::tcgetattr(fd, &t), 0);
    return t;
}

bool same_termios(const termios& a, const termios& b) {
    return a.c_iflag == b.c_iflag && a.c_oflag == b.c_oflag && a.c_cflag == b.c_cflag && a.c_lflag == b.c_lflag &&
           ::cfgetispeed(&a) == ::cfgetispeed(&b) && ::cfgetospeed(&a) == ::cfgetospeed(&b) &&
           std::equal(std::begin(a.c_cc), std::end(a.c_cc), b.c_cc);
}

TEST_F(serial_port_pty, inspection_reads_the_port_and_changes_nothing) {
    const int fd = ::open(pty_.slave().c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    const auto before = make_cooked(fd);

    const auto st = io::inspect_serial(pty_.slave());
    termios after{};
    ASSERT_EQ(::tcgetattr(fd, &after), 0);
    EXPECT_TRUE(same_termios(before, after)) << "inspection sets nothing";

    EXPECT_EQ(st.path, pty_.slave());
    EXPECT_EQ(st.driver, "pty");
    ASSERT_TRUE(st.settings.has_value()) << st.settings_error;
    EXPECT_EQ(st.settings_error, "");
    EXPECT_EQ(*st.settings, serial_settings{}
                                .set_baud(4800)
                                .set_stop_bits(io::stop_bits::two)
                                .set_flow_control(io::flow_control::xon_xoff));
    // A pty has no modem lines, counters, serial_struct or FTDI timer.
    EXPECT_FALSE(st.modem.has_value());
    EXPECT_FALSE(st.counters.has_value());
    EXPECT_FALSE(st.low_latency.has_value());
    EXPECT_EQ(st.latency_timer, -1);

    // Nor does it touch a port that libio holds (shared, so that the open is
    // not refused), and the holder's settings read back as it set them.
    const auto held = serial_settings{}.set_baud(230400);
    serial_port port{pty_.slave(), held, io::serial_access::shared};
    termios during{};
    ASSERT_EQ(::tcgetattr(fd, &during), 0);
    EXPECT_EQ(io::inspect_serial(pty_.slave()).settings, held);
    termios still{};
    ASSERT_EQ(::tcgetattr(fd, &still), 0);
    EXPECT_TRUE(same_termios(during, still));
    port.close();
    ::close(fd);
}

TEST_F(serial_port_pty, settings_outside_libios_range_are_reported_not_thrown) {
    const int fd = ::open(pty_.slave().c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    termios t{};
    ASSERT_EQ(::tcgetattr(fd, &t), 0);
    ::cfsetospeed(&t, B0);  // the hang-up rate
    ASSERT_EQ(::tcsetattr(fd, TCSANOW, &t), 0);
    const auto st = io::inspect_serial(pty_.slave());
    EXPECT_FALSE(st.settings.has_value());
    EXPECT_EQ(st.settings_error, "baud rate 0 (hang-up)");
    EXPECT_EQ(st.driver, "pty") << "the rest is read all the same";
    ::close(fd);
}

TEST(serial_port, inspecting_what_is_not_a_serial_port_names_the_path) {
    const auto not_tty = caught([] { (void)io::inspect_serial("/dev/null"); });
    EXPECT_EQ(not_tty.code(), std::error_code(ENOTTY, std::system_category()));
    EXPECT_STREQ(not_tty.what(), "open /dev/null: not a serial port: Inappropriate ioctl for device");
    const auto missing = caught([] { (void)io::inspect_serial("/nonexistent/ttyX"); });
    EXPECT_EQ(missing.code(), std::error_code(ENOENT, std::system_category()));
    EXPECT_TRUE(contains(missing.what(), "open /nonexistent/ttyX")) << missing.what();
}

namespace seam {
int opens = 0, closes = 0, ioctls = 0;
int open(const char* p, int f, mode_t m) {
    ++opens;
    return io::detail::real_sys().open(p, f, m);
}
int close(int fd) {
    ++closes;
    return io::detail::real_sys().close(fd);
}
int ioctl(int fd, unsigned long r, void* a) {
    ++ioctls;
    return io::detail::real_sys().ioctl(fd, r, a);
}
int ioctl_gone(int, unsigned long, void*) {
    errno = ENODEV;
    return -1;
}
}  // namespace seam

TEST_F(serial_port_pty, inspection_goes_through_the_seam_and_closes_what_it_opened) {
    auto calls = io::detail::real_sys();
    calls.open = seam::open;
    calls.close = seam::close;
    calls.ioctl = seam::ioctl;
    {
        io::detail::sys_override guard{calls};
        (void)io::inspect_serial(pty_.slave());
        EXPECT_EQ(seam::opens, 1);
        EXPECT_EQ(seam::closes, 1);
        EXPECT_GE(seam::ioctls, 5) << "termios, RS-485, modem lines, counters, serial_struct";
        (void)caught([] { (void)io::inspect_serial("/dev/null"); });
        EXPECT_EQ(seam::opens, 2);
        EXPECT_EQ(seam::closes, 2) << "closed after a failure too";
    }
    calls.ioctl = seam::ioctl_gone;
    io::detail::sys_override guard{calls};
    const auto e = caught([&] { (void)io::inspect_serial(pty_.slave()); });
    EXPECT_TRUE(io::is_device_removed(e.code()));
    EXPECT_TRUE(contains(e.what(), "open " + pty_.slave() + ": not a serial port: device removed")) << e.what();
}

TEST_F(serial_port_pty, kept_settings_outlive_the_port_and_raw_mode_does_not) {
    const int fd = ::open(pty_.slave().c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    const auto orig = make_cooked(fd);
    const auto now = [fd] {
        termios t{};
        EXPECT_EQ(::tcgetattr(fd, &t), 0);
        return t;
    };
    {
        serial_port port{pty_.slave(), serial_settings{}.set_baud(57600).set_stop_bits(io::stop_bits::one)};
        port.keep_settings_on_close();
        port.close();
    }
    auto t = now();
    EXPECT_EQ(::cfgetospeed(&t), static_cast<speed_t>(B57600));
    EXPECT_EQ(t.c_cflag & CSTOPB, 0U) << "one stop bit, as set";
    EXPECT_EQ(t.c_iflag & (IXON | IXOFF), 0U) << "no flow control, as set";
    EXPECT_EQ(t.c_lflag, orig.c_lflag) << "echo and line editing come back";
    EXPECT_EQ(t.c_oflag, orig.c_oflag);
    EXPECT_EQ(t.c_cflag & CLOCAL, 0U) << "raw mode's CLOCAL is undone";
    EXPECT_TRUE(std::equal(std::begin(t.c_cc), std::end(t.c_cc), orig.c_cc));
    EXPECT_EQ(io::inspect_serial(pty_.slave()).settings, serial_settings{}.set_baud(57600));

    {  // the destructor keeps them too
        serial_port port{pty_.slave(), serial_settings{}.set_baud(1200).set_flow_control(io::flow_control::xon_xoff)};
        port.keep_settings_on_close();
    }
    t = now();
    EXPECT_EQ(::cfgetospeed(&t), static_cast<speed_t>(B1200));
    EXPECT_EQ(t.c_iflag & (IXON | IXOFF), static_cast<tcflag_t>(IXON | IXOFF));
    EXPECT_EQ(t.c_lflag, orig.c_lflag);

    {  // and changing one's mind restores as ever
        serial_port port{pty_.slave(), serial_settings{}.set_baud(300)};
        port.keep_settings_on_close();
        port.keep_settings_on_close(false);
    }
    t = now();
    EXPECT_EQ(::cfgetospeed(&t), static_cast<speed_t>(B1200));

    serial_port closed{pty_.slave()};
    closed.close();
    EXPECT_THROW(closed.keep_settings_on_close(), io::usage_error);
    ::close(fd);
}

TEST_F(serial_port_pty, a_second_open_names_the_holder) {
    serial_port first{pty_.slave()};
    const auto e = caught([&] { serial_port second{pty_.slave()}; });
    EXPECT_EQ(e.code(), std::error_code(EBUSY, std::system_category()));
    EXPECT_TRUE(contains(e.what(), "open " + pty_.slave() + ": in use by pid " + std::to_string(::getpid())))
        << e.what();
    first.close();
    EXPECT_NO_THROW(serial_port{pty_.slave()}) << "free again once closed";
}

/// A child process that holds the pty slave its own way until killed.
class holder {
public:
    holder(const std::string& path, bool use_flock, bool use_tiocexcl) {
        int ready[2];
        if (::pipe(ready) != 0)
            throw std::system_error(errno, std::system_category(), "pipe");
        pid_ = ::fork();
        if (pid_ == 0) {
            const int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY);
            if (fd < 0 || (use_flock && ::flock(fd, LOCK_EX) != 0) || (use_tiocexcl && ::ioctl(fd, TIOCEXCL) != 0))
                ::_exit(1);
            (void)!::write(ready[1], "x", 1);
            for (;;)
                ::pause();
        }
        ::close(ready[1]);
        char c;
        ok_ = ::read(ready[0], &c, 1) == 1;
        ::close(ready[0]);
    }
    ~holder() {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    holder(const holder&) = delete;
    holder& operator=(const holder&) = delete;
    bool ok() const { return ok_; }
    pid_t pid() const { return pid_; }

private:
    pid_t pid_;
    bool ok_ = false;
};

TEST_F(serial_port_pty, a_flock_held_by_another_process_is_named) {
    holder h{pty_.slave(), true, false};
    ASSERT_TRUE(h.ok());
    const auto e = caught([&] { serial_port port{pty_.slave()}; });
    EXPECT_EQ(e.code(), std::error_code(EBUSY, std::system_category()));
    EXPECT_TRUE(contains(e.what(), "in use by pid " + std::to_string(h.pid()) + " (")) << e.what();
    EXPECT_NO_THROW(serial_port(pty_.slave(), {}, io::serial_access::shared)) << "shared access takes no lock";
}

TEST_F(serial_port_pty, tiocexcl_held_by_another_process_is_named) {
    holder h{pty_.slave(), false, true};
    ASSERT_TRUE(h.ok());
    const auto e = caught([&] { serial_port port{pty_.slave()}; });
    EXPECT_EQ(e.code(), std::error_code(EBUSY, std::system_category()));
    EXPECT_TRUE(contains(e.what(), "in use by pid " + std::to_string(h.pid()))) << e.what();
}

TEST(serial_port, open_errors_name_the_path) {
    const auto missing = caught([] { serial_port{"/nonexistent/ttyX"}; });
    EXPECT_EQ(missing.code(), std::error_code(ENOENT, std::system_category()));
    EXPECT_TRUE(contains(missing.what(), "open /nonexistent/ttyX")) << missing.what();
    const auto not_tty = caught([] { serial_port{"/dev/null"}; });
    EXPECT_EQ(not_tty.code(), std::error_code(ENOTTY, std::system_category()));
    EXPECT_TRUE(contains(not_tty.what(), "open /dev/null: not a serial port")) << not_tty.what();
}

TEST_F(serial_port_pty, moved_from_and_closed_ports_refuse_use) {
    serial_port a{pty_.slave()};
    const int fd = a.fd();
    serial_port b{std::move(a)};
    EXPECT_EQ(b.fd(), fd);
    EXPECT_EQ(a.fd(), -1);  // NOLINT(bugprone-use-after-move): the point of the test
    EXPECT_FALSE(a.is_open());
    EXPECT_THROW(a.settings(), io::usage_error);
    std::vector<std::uint8_t> buf(4);
    EXPECT_THROW(a.read(bytes(buf), {}), io::usage_error);
    std::error_code ec;
    EXPECT_EQ(a.read(bytes(buf), {}, ec), 0U);
    EXPECT_EQ(ec, std::errc::bad_file_descriptor);

    pty other;
    serial_port c{other.slave()};
    c = std::move(b);  // c's own port is restored and closed
    EXPECT_EQ(c.fd(), fd);
    EXPECT_NO_THROW(serial_port{other.slave()}) << "the port c held was released";
    c.close();
    EXPECT_THROW(c.flush(io::serial_queue::both), io::usage_error);
}

TEST_F(serial_port_pty, low_latency_modem_lines_and_counters_need_a_uart) {
    serial_port port{pty_.slave()};
    const auto ll = caught([&] { port.set_low_latency(true); });
    EXPECT_TRUE(contains(ll.what(), "low latency not supported by driver pty on " + pty_.slave())) << ll.what();
    EXPECT_EQ(port.latency_timer(), -1);
    EXPECT_EQ(caught([&] { (void)port.modem(); }).code(), std::error_code(ENOTTY, std::system_category()));
    EXPECT_EQ(caught([&] { port.set_dtr(true); }).code(), std::error_code(ENOTTY, std::system_category()));
    const auto ct = caught([&] { (void)port.counters(); });
    EXPECT_TRUE(contains(ct.what(), "error counters not supported by driver pty")) << ct.what();
    EXPECT_THROW(port.wait_modem_change(io::modem_lines{}), io::invalid_argument);
    std::error_code ec;
    (void)port.wait_modem_change(io::modem_lines{}, ec);
    EXPECT_EQ(ec, std::errc::invalid_argument);
}

TEST_F(serial_port_pty, break_drain_flush_and_available) {
    serial_port port{pty_.slave()};
    EXPECT_NO_THROW(port.send_break(10ms));
    pty_.send(counting(5));
    const auto until = clock_type::now() + 2s;
    while (port.available() < 5 && clock_type::now() < until)
        std::this_thread::sleep_for(1ms);
    EXPECT_EQ(port.available(), 5U);
    port.flush(io::serial_queue::input);
    EXPECT_EQ(port.available(), 0U);

    EXPECT_EQ(port.write(bytes(counting(100))), 100U);
    port.drain();
    EXPECT_EQ(pty_.receive(100), counting(100));
    EXPECT_NO_THROW(port.flush(io::serial_queue::output));
    EXPECT_NO_THROW(port.flush(io::serial_queue::both));
}

// --- reads and writes ---------------------------------------------------------

TEST_F(serial_port_pty, data_crosses_both_ways_intact) {
    serial_port port{pty_.slave()};
    const auto out = counting(64 * 1024, 7);
    std::thread far{[&] { EXPECT_EQ(pty_.receive(out.size()), out); }};
    EXPECT_EQ(port.write(bytes(out)), out.size());
    far.join();

    const auto in = counting(3000, 3);
    pty_.send(in);
    std::vector<std::uint8_t> got(in.size());
    EXPECT_EQ(port.read(bytes(got), {.total = 2s}), in.size());
    EXPECT_EQ(got, in);
}

TEST_F(serial_port_pty, total_timeout_with_no_data) {
    serial_port port{pty_.slave()};
    std::vector<std::uint8_t> buf(16);
    for (const auto timeout : {20ms, 100ms, 250ms}) {
        io::test::wait_log log;
        const auto t0 = clock_type::now();
        EXPECT_EQ(port.read(bytes(buf), {.total = timeout}), 0U);
        const auto took = ms_since(t0);
        EXPECT_GE(took, timeout);
        EXPECT_TRUE(log.waits_end_by(timeout)) << log;
        std::printf("  total %3lld ms: returned after %3lld ms\n", static_cast<long long>(timeout.count()),
                    static_cast<long long>(took.count()));
    }
    io::test::wait_log log;
    const auto t0 = clock_type::now();
    EXPECT_EQ(port.read_some(bytes(buf), 50ms), 0U);
    EXPECT_GE(ms_since(t0), 50ms);
    EXPECT_TRUE(log.waits_end_by(50ms)) << log;
    EXPECT_EQ(port.read(bytes(buf), {.total = 0ms}), 0U) << "a zero total polls once";
}

TEST_F(serial_port_pty, inter_byte_timeout_ends_a_frame) {
    // The gap is far longer than the pause inside the frame, so that no
    // stall of the sending thread on a loaded machine splits the frame; the
    // next frame is sent only once the first read has returned.
    constexpr auto gap = 1s;
    serial_port port{pty_.slave()};
    std::vector<std::uint8_t> buf(256);
    std::atomic<bool> first_done{false};
    std::thread far{[&] {
        pty_.send(counting(10, 0));
        std::this_thread::sleep_for(20ms);  // a pause shorter than the gap: the same frame
        pty_.send(counting(10, 10));
        while (!first_done)
            std::this_thread::sleep_for(1ms);
        pty_.send(counting(5, 20));  // the next frame
    }};
    std::size_t n = 0;
    clock_type::time_point end, last_data;
    {
        io::test::wait_log log;
        n = port.read(bytes(buf), {.total = 30s, .inter_byte = gap});
        end = clock_type::now();
        first_done = true;
        EXPECT_TRUE(log.waits_after_last_data_end_by(gap)) << log;
        ASSERT_TRUE(log.last_data());
        last_data = *log.last_data();
    }
    EXPECT_EQ(n, 20U);
    buf.resize(n);
    EXPECT_EQ(buf, counting(20));
    EXPECT_GE(end - last_data, gap) << "the frame ended before the gap after its last byte";

    std::vector<std::uint8_t> next(256);
    const auto m = port.read(bytes(next), {.total = 30s, .inter_byte = gap});
    far.join();
    next.resize(m);
    EXPECT_EQ(next, counting(5, 20));
}

TEST_F(serial_port_pty, total_timeout_ends_a_stream_without_gaps) {
    // Bytes keep coming and the inter-byte gap is longer than the total (and
    // than any stall of the sender): only the total can end the read.
    serial_port port{pty_.slave()};
    std::atomic<bool> stop{false};
    pty_.send({0});  // the stream has begun before the read
    std::thread far{[&] {
        for (std::uint8_t i = 1; !stop; ++i) {
            pty_.send({i});
            std::this_thread::sleep_for(5ms);
        }
    }};
    std::vector<std::uint8_t> buf(4096);
    io::test::wait_log log;
    const auto t0 = clock_type::now();
    const auto n = port.read(bytes(buf), {.total = 200ms, .inter_byte = 10s});
    const auto took = ms_since(t0);
    stop = true;
    far.join();
    EXPECT_GT(n, 0U);
    EXPECT_GE(took, 200ms);
    EXPECT_TRUE(log.waits_end_by(200ms)) << "a stream kept the read past its total: " << log;
    std::printf("  total 200 ms over a steady stream: %zu bytes, returned after %lld ms\n", n,
                static_cast<long long>(took.count()));
}

TEST_F(serial_port_pty, a_full_buffer_returns_at_once) {
    serial_port port{pty_.slave()};
    pty_.send(counting(100));
    std::this_thread::sleep_for(20ms);
    std::vector<std::uint8_t> buf(60);
    {
        io::test::wait_log log;
        EXPECT_EQ(port.read(bytes(buf), {.total = 5s, .inter_byte = 1s}), 60U);
        EXPECT_TRUE(log.none_timed_out()) << "a full buffer waited for the inter-byte gap: " << log;
    }
    EXPECT_EQ(port.read_some(bytes(buf), 1s), 40U);
}

TEST_F(serial_port_pty, a_held_up_write_reports_how_much_was_written) {
    serial_port port{pty_.slave()};
    // Nobody reads the master: the pty's buffers fill and the write stops.
    const std::vector<std::uint8_t> big(4 * 1024 * 1024, 0x55);
    io::test::wait_log log;
    const auto t0 = clock_type::now();
    const auto n = port.write(bytes(big), 100ms);
    const auto took = ms_since(t0);
    EXPECT_GT(n, 0U);
    EXPECT_LT(n, big.size());
    EXPECT_GE(took, 100ms);
    EXPECT_TRUE(log.waits_end_by(100ms)) << log;
    std::printf("  write timeout 100 ms: %zu of %zu bytes written, returned after %lld ms\n", n, big.size(),
                static_cast<long long>(took.count()));
}

TEST_F(serial_port_pty, a_hung_up_peer_reads_as_device_removed) {
    serial_port port{pty_.slave()};
    pty_.hang_up();
    std::vector<std::uint8_t> buf(8);
    const auto e = caught([&] { port.read(bytes(buf), {.total = 1s}); });
    EXPECT_TRUE(io::is_device_removed(e.code())) << e.what();
    EXPECT_TRUE(contains(e.what(), "read " + pty_.slave() + ": device removed")) << e.what();
    std::error_code ec;
    EXPECT_EQ(port.write(bytes(counting(8)), 1s, ec), 0U);
    EXPECT_TRUE(io::is_device_removed(ec)) << ec.message();
}

// --- faults through the system-call seam ----------------------------------------

// The fakes are plain functions (the seam holds function pointers); they keep
// their state here.
int fault_count;
int fault_errno;

ssize_t read_fails_first(int fd, void* buf, size_t n) {
    if (fault_count > 0) {
        --fault_count;
        errno = fault_errno;
        return -1;
    }
    return io::detail::real_sys().read(fd, buf, n);
}

ssize_t write_fails_first(int fd, const void* buf, size_t n) {
    if (fault_count > 0) {
        --fault_count;
        errno = fault_errno;
        return -1;
    }
    return io::detail::real_sys().write(fd, buf, n);
}

int ppoll_interrupted_first(pollfd* fds, nfds_t n, const timespec* t, const sigset_t* m) {
    if (fault_count > 0) {
        --fault_count;
        errno = EINTR;
        return -1;
    }
    return io::detail::real_sys().ppoll(fds, n, t, m);
}

ssize_t write_three_at_most(int fd, const void* buf, size_t n) {
    ++fault_count;
    return io::detail::real_sys().write(fd, buf, std::min<size_t>(n, 3));
}

// Writes `fault_count` bytes, three at a time, then fails with fault_errno.
ssize_t write_then_fail(int fd, const void* buf, size_t n) {
    if (fault_count <= 0) {
        errno = fault_errno;
        return -1;
    }
    const auto r = io::detail::real_sys().write(fd, buf, std::min<size_t>({n, 3, static_cast<size_t>(fault_count)}));
    if (r > 0)
        fault_count -= static_cast<int>(r);
    return r;
}

// Reads what there is on the first call, then fails with fault_errno.
ssize_t read_then_fail(int fd, void* buf, size_t n) {
    if (fault_count-- > 0)
        return io::detail::real_sys().read(fd, buf, n);
    errno = fault_errno;
    return -1;
}

int ioctl_fails(int, unsigned long, void*) {
    errno = fault_errno;
    return -1;
}

int open_fails(const char*, int, mode_t) {
    errno = fault_errno;
    return -1;
}

io::detail::sys_calls faked() {
    return io::detail::real_sys();
}

TEST_F(serial_port_pty, eintr_and_eagain_on_read_are_not_errors) {
    serial_port port{pty_.slave()};
    for (const int err : {EINTR, EAGAIN}) {
        auto calls = faked();
        calls.read = read_fails_first;
        io::detail::sys_override guard{calls};
        fault_count = 3;
        fault_errno = err;
        pty_.send(counting(10));
        std::vector<std::uint8_t> buf(10);
        EXPECT_EQ(port.read(bytes(buf), {.total = 1s}), 10U) << std::strerror(err);
        EXPECT_EQ(buf, counting(10));
        EXPECT_EQ(fault_count, 0);
    }
}

TEST_F(serial_port_pty, eintr_in_the_wait_is_not_an_error) {
    serial_port port{pty_.slave()};
    auto calls = faked();
    calls.ppoll = ppoll_interrupted_first;
    io::detail::sys_override guard{calls};
    fault_count = 5;
    std::vector<std::uint8_t> buf(4);
    const auto t0 = clock_type::now();
    EXPECT_EQ(port.read(bytes(buf), {.total = 50ms}), 0U);
    EXPECT_GE(ms_since(t0), 50ms) << "an interrupted wait does not end the timeout early";
    EXPECT_EQ(fault_count, 0);
}

TEST_F(serial_port_pty, eintr_eagain_and_short_writes_still_complete) {
    serial_port port{pty_.slave()};
    const auto data = counting(1000, 1);
    {
        auto calls = faked();
        calls.write = write_fails_first;
        io::detail::sys_override guard{calls};
        for (const int err : {EINTR, EAGAIN}) {
            fault_count = 3;
            fault_errno = err;
            EXPECT_EQ(port.write(bytes(data), 1s), data.size());
            EXPECT_EQ(pty_.receive(data.size()), data);
        }
    }
    {
        auto calls = faked();
        calls.write = write_three_at_most;
        io::detail::sys_override guard{calls};
        fault_count = 0;
        EXPECT_EQ(port.write(bytes(data)), data.size());
        EXPECT_EQ(fault_count, 334) << "three bytes a call";
    }
    EXPECT_EQ(pty_.receive(data.size()), data);
}

TEST_F(serial_port_pty, enodev_on_write_reports_what_was_written) {
    serial_port port{pty_.slave()};
    auto calls = faked();
    calls.write = write_then_fail;
    io::detail::sys_override guard{calls};
    fault_errno = ENODEV;
    fault_count = 7;
    std::error_code ec;
    EXPECT_EQ(port.write(bytes(counting(10)), 1s, ec), 7U);
    EXPECT_EQ(ec, std::error_code(ENODEV, std::system_category()));
    EXPECT_TRUE(io::is_device_removed(ec));
    EXPECT_EQ(pty_.receive(7), counting(7));

    fault_count = 4;
    const auto e = caught([&] { port.write(bytes(counting(10)), 1s); });
    EXPECT_TRUE(io::is_device_removed(e.code()));
    EXPECT_TRUE(contains(e.what(), "write " + pty_.slave() + " (4 of 10 bytes written): device removed")) << e.what();
}

TEST_F(serial_port_pty, enodev_on_read_is_device_removed_and_keeps_what_came) {
    serial_port port{pty_.slave()};
    pty_.send(counting(6));
    std::this_thread::sleep_for(20ms);
    auto calls = faked();
    calls.read = read_then_fail;
    io::detail::sys_override guard{calls};
    fault_errno = ENODEV;
    fault_count = 1;
    std::vector<std::uint8_t> buf(10);
    std::error_code ec;
    EXPECT_EQ(port.read(bytes(buf), {.total = 1s}, ec), 6U);
    EXPECT_TRUE(io::is_device_removed(ec)) << ec.message();

    fault_count = 0;
    const auto e = caught([&] { port.read(bytes(buf), {.total = 1s}); });
    EXPECT_EQ(e.code(), std::error_code(ENODEV, std::system_category()));
    EXPECT_TRUE(contains(e.what(), "read " + pty_.slave() + ": device removed")) << e.what();
    fault_count = 0;
    EXPECT_EQ(port.read_some(bytes(buf), 1s, ec), 0U);
    EXPECT_TRUE(io::is_device_removed(ec));
}

TEST_F(serial_port_pty, a_vanished_device_during_setup_is_device_removed) {
    serial_port port{pty_.slave()};
    {
        auto calls = faked();
        calls.ioctl = ioctl_fails;
        io::detail::sys_override guard{calls};
        fault_errno = EIO;
        const auto e = caught([&] { port.apply(serial_settings{}.set_baud(9600)); });
        EXPECT_TRUE(io::is_device_removed(e.code()));
        EXPECT_TRUE(contains(e.what(), pty_.slave() + ": device removed")) << e.what();
        fault_errno = ENODEV;
        EXPECT_NO_THROW(port.close()) << "restoring is skipped on a removed device";
    }
    auto calls = faked();
    calls.open = open_fails;
    io::detail::sys_override guard{calls};
    fault_errno = ENODEV;
    const auto e = caught([&] { serial_port{pty_.slave()}; });
    EXPECT_TRUE(contains(e.what(), "open " + pty_.slave() + ": device removed")) << e.what();
}

}  // namespace

// --- event loop ---------------------------------------------------------------

TEST_F(serial_port_pty, the_event_loop_calls_back_when_data_arrives) {
    io::serial_port port{pty_.slave()};
    io::event_loop loop;
    std::vector<std::byte> got;
    int calls = 0;
    auto reg = io::on_serial_data(loop, port, [&](std::error_code ec) {
        ASSERT_FALSE(ec) << ec.message();
        ++calls;
        std::array<std::byte, 64> buf{};
        const auto n = port.read_some(buf, 0us);
        got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    });
    EXPECT_EQ(loop.run_once(20ms), 0U) << "nothing received, no call";
    pty_.send({'h', 'i'});
    EXPECT_EQ(loop.run_once(1000ms), 1U);
    EXPECT_EQ(got.size(), 2U);
    EXPECT_EQ(calls, 1);
}

TEST_F(serial_port_pty, the_event_loop_reports_a_hangup_once) {
    io::serial_port port{pty_.slave()};
    io::event_loop loop;
    std::vector<std::error_code> errors;
    auto reg = io::on_serial_data(loop, port, [&](std::error_code ec) {
        if (ec)
            errors.push_back(ec);
    });
    pty_.hang_up();
    loop.run_once(1000ms);
    loop.run_once(50ms);
    ASSERT_EQ(errors.size(), 1U) << "reported once, then no longer watched";
    EXPECT_TRUE(io::is_device_removed(errors[0]));
}

TEST_F(serial_port_pty, modem_change_callbacks_need_modem_lines) {
    io::serial_port port{pty_.slave()};
    io::event_loop loop;
    EXPECT_THROW(io::on_modem_change(loop, port, 10ms, [](const io::modem_lines&, std::error_code) {}),
                 std::system_error)
        << "a pty has no modem lines: refused when registering";
    EXPECT_THROW(io::on_modem_change(loop, port, 0ms, [](const io::modem_lines&, std::error_code) {}),
                 io::invalid_argument);
}

// A port opened for control only beside the data stream's owner: the owner's
// termios and exclusive lock stay as they are, during and after, and the
// calls that would touch data or settings are refused.
TEST_F(serial_port_pty, control_only_leaves_the_owner_alone) {
    io::serial_port owner{pty_.slave(), io::serial_settings{}.set_baud(9600), io::serial_access::shared};
    ASSERT_EQ(::flock(owner.fd(), LOCK_EX | LOCK_NB), 0);  // the owner's lock, as an exclusive owner takes it
    const auto before = glibc_view(pty_.slave());
    {
        io::serial_port control{pty_.slave(), io::control_only};
        EXPECT_EQ(control.settings().baud(), 9600U);
        const auto during = glibc_view(pty_.slave());
        EXPECT_EQ(::cfgetospeed(&during), ::cfgetospeed(&before));
        EXPECT_EQ(during.c_lflag, before.c_lflag);
        EXPECT_EQ(during.c_iflag, before.c_iflag);
        std::byte b[4]{};
        EXPECT_THROW((void)control.read_some(b, std::chrono::milliseconds{0}), io::usage_error);
        std::error_code ec;
        EXPECT_EQ(control.write(std::span<const std::byte>{b}, std::chrono::milliseconds{0}, ec), 0U);
        EXPECT_EQ(ec, std::errc::operation_not_permitted);
        EXPECT_THROW((void)control.apply(io::serial_settings{}.set_baud(19200)), io::usage_error);
        EXPECT_THROW(control.flush(io::serial_queue::both), io::usage_error);
        EXPECT_THROW(control.set_break(true), io::usage_error);
        EXPECT_THROW(control.keep_settings_on_close(), io::usage_error);
    }
    const auto after = glibc_view(pty_.slave());
    EXPECT_EQ(::cfgetospeed(&after), ::cfgetospeed(&before)) << "the close restored settings it never applied";
    EXPECT_EQ(after.c_lflag, before.c_lflag);
    EXPECT_EQ(owner.settings().baud(), 9600U);
}
