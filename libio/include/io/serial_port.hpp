// SPDX-License-Identifier: MIT
#pragma once

#include <io/card.hpp>
#include <io/event_loop.hpp>
#include <io/export.hpp>
#include <io/serial_settings.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>

namespace io {

/// Waits without limit, where a duration is asked for.
inline constexpr std::chrono::microseconds no_timeout = std::chrono::microseconds::max();

/// Limits of serial_port::read(). The read ends when the buffer is full, when
/// `total` has passed since the call, or, once a byte has come, when
/// `inter_byte` passes without another: the frame gap that ends a Modbus RTU
/// frame (3.5 character times; 1.75 ms above 19200 baud). An inter_byte of
/// zero means no gap ends the read.
struct read_timeouts {
    std::chrono::microseconds total = no_timeout;
    std::chrono::microseconds inter_byte{0};
};

/// The RS-232 modem control lines. dtr and rts are outputs; cts, dsr, dcd
/// (carrier detect) and ri (ring indicator) are inputs.
struct modem_lines {
    bool dtr = false;
    bool rts = false;
    bool cts = false;
    bool dsr = false;
    bool dcd = false;
    bool ri = false;
    friend bool operator==(const modem_lines&, const modem_lines&) = default;
};

/// The driver's counters since the port was first opened (TIOCGICOUNT):
/// characters moved, line errors and modem line changes.
struct serial_counters {
    std::uint64_t rx = 0;       ///< characters received
    std::uint64_t tx = 0;       ///< characters sent
    std::uint64_t overrun = 0;  ///< characters lost: UART FIFO overrun plus tty buffer overrun
    std::uint64_t parity = 0;   ///< characters with a parity error
    std::uint64_t framing = 0;  ///< characters with a framing error (a missing stop bit)
    std::uint64_t breaks = 0;   ///< break conditions received
    std::uint64_t cts = 0;      ///< changes of CTS
    std::uint64_t dsr = 0;      ///< changes of DSR
    std::uint64_t dcd = 0;      ///< changes of DCD
    std::uint64_t ri = 0;       ///< trailing edges of RI
};

/// Who else may use the port while this object holds it.
enum class serial_access {
    /// Nobody: flock(LOCK_EX) on the device plus TIOCEXCL, so neither a
    /// cooperating program nor a plain open() (except by root) gets in.
    exclusive,
    /// Anybody; nothing is locked.
    shared,
};

/// Tag of serial_port's constructor that opens a port for its modem lines
/// and counters only (io::control_only).
struct control_only_t {
    explicit control_only_t() = default;
};
/// Opens a serial_port for control only: see serial_port(path, control_only_t).
inline constexpr control_only_t control_only{};

/// Which queue flush() empties.
enum class serial_queue { input, output, both };

/// A serial port as it is, seen without changing it (io::inspect_serial).
/// A field the driver cannot report is empty, not an error: ptys have no
/// modem lines, counters or serial_struct.
struct serial_status {
    std::filesystem::path path;  ///< the path it was read by
    /// The kernel driver, as serial_port::driver() names it ("serial",
    /// "ftdi_sio", "pty"), or "unknown".
    std::string driver;
    /// Line settings and mode. nullopt when the port is set to something
    /// libio cannot express (a baud of 0, the hang-up rate; RTS/CTS flow
    /// control in RS-485 mode): settings_error says what.
    std::optional<serial_settings> settings;
    std::string settings_error;           ///< "" when settings has a value
    std::optional<modem_lines> modem;     ///< nullopt without TIOCMGET
    std::optional<serial_counters> counters;  ///< nullopt without TIOCGICOUNT
    std::optional<bool> low_latency;      ///< ASYNC_LOW_LATENCY; nullopt without TIOCGSERIAL
    int latency_timer = -1;               ///< the FTDI latency_timer in ms; -1 when the device has none
};

/// Reads a serial port's state without applying, locking or restoring
/// anything: the port is opened non-blocking (as any open of a tty, a first
/// open raises DTR and RTS when the baud is not 0, and the last close drops
/// them when HUPCL is set), read with ioctls that only get, and closed.
/// Works while another program holds the port, unless it set TIOCEXCL
/// (then EBUSY, for all but root), as io::serial_port does.
/// \throws std::system_error ENOENT, EACCES, EBUSY ("open PATH: ..."); ENOTTY
///         "open PATH: not a serial port" when path is not a tty.
LIBIO_EXPORT serial_status inspect_serial(const std::filesystem::path& path);

/// The path of serial port `index` of a card: the port whose
/// serial_port_info::index is `index` (the N of /dev/serial/by-card/.../portN).
/// \throws io::invalid_argument naming the card and the ports it has when it
///         has no such port.
LIBIO_EXPORT std::filesystem::path serial_port_path(const card_info& card, unsigned index);

/// A serial port (a tty: 16550-family UARTs, USB serial adapters, ptys),
/// opened in raw mode with the given settings.
///
/// The previous termios, RS-485 configuration and low-latency flag of the
/// port are restored when the object closes it (keep_settings_on_close()
/// keeps the line settings and mode instead, as stty does). The port is opened
/// non-blocking; every wait is libio's own (poll), so reads and writes take
/// timeouts and never hang on a vanished device.
///
/// Errors: calls throw std::system_error with errno and context ("set baud
/// 3000000 on /dev/ttyS4: ..."); a device that was unplugged or whose driver
/// went away reads "device removed" (see io::is_device_removed). read, write
/// and wait_modem_change also come as noexcept overloads that report
/// through a std::error_code. Using a closed or moved-from port throws
/// io::usage_error.
///
/// Thread rules: one object per thread, except that read, write and
/// wait_modem_change may run in different threads at the same time (a thread
/// blocked in wait_modem_change is the usual reason).
class LIBIO_EXPORT serial_port final {
public:
    /// Opens path (a /dev node or any symlink to one, such as a udev stable
    /// name) and applies settings.
    /// \throws std::system_error EBUSY naming the holder ("in use by pid 1234
    ///         (minicom)") when exclusive access is refused; ENOTTY when path
    ///         is not a tty; the errors of apply().
    /// \throws io::invalid_argument when settings are invalid; the port is not
    ///         touched then.
    explicit serial_port(const std::filesystem::path& path, const serial_settings& settings = {},
                         serial_access access = serial_access::exclusive);
    /// Opens port `index` (from 0) of a discovered card (io::enumerate(),
    /// io::find_card()), found by io::serial_port_path(); the same errors,
    /// and io::invalid_argument naming the card's ports when it has no such
    /// port.
    serial_port(const card_info& card, unsigned index, const serial_settings& settings = {},
                serial_access access = serial_access::exclusive);
    /// Opens path for its modem lines and counters only, beside a program
    /// that owns the data stream: nothing is locked (no flock, no
    /// TIOCEXCL), nothing is applied and nothing is restored at close (the
    /// termios, RS-485 mode and low-latency flag stay as the owner sets
    /// them). The port is opened non-blocking as inspect_serial does. The
    /// kernel's tty layer raises DTR and RTS at every open of a tty whose
    /// baud is not 0, beside an owner too: an owner that keeps them low
    /// sees them high from this open until it sets them again. The last
    /// close drops them when HUPCL is set (not beside an owner). modem(),
    /// set_dtr(), set_rts(), counters(), wait_modem_change(), settings()
    /// and fd() work; the calls that would touch the data or the settings
    /// (read, write, flush, drain, break, apply, set_low_latency,
    /// keep_settings_on_close) throw io::usage_error, and their noexcept
    /// overloads report std::errc::operation_not_permitted.
    /// \throws std::system_error ENOENT, EACCES; EBUSY when the owner set
    ///         TIOCEXCL (for all but root); ENOTTY when path is not a tty.
    serial_port(const std::filesystem::path& path, control_only_t);
    ~serial_port();
    serial_port(serial_port&& other) noexcept;
    serial_port& operator=(serial_port&& other) noexcept;
    serial_port(const serial_port&) = delete;
    serial_port& operator=(const serial_port&) = delete;

    /// Restores what the port had before it was opened (all of it but the
    /// line settings and mode after keep_settings_on_close()) and closes it.
    /// Restoring is skipped on a removed device. Idempotent.
    /// \throws std::system_error when restoring fails for another reason (the
    ///         port is closed all the same).
    void close();

    /// Whether close() and the destructor leave the port's settings as they
    /// are then, for the next program that opens the port (a configuration
    /// command, as stty): speed, data bits, parity, stop bits, flow control
    /// (CRTSCTS, IXON, IXOFF) and the RS-485/RS-422 mode stay; the rest of
    /// the termios (raw mode: echo, line editing, translations), the
    /// low-latency flag, the FTDI latency timer and exclusive access are
    /// undone as ever. Off by default.
    /// \throws io::usage_error on a closed port.
    void keep_settings_on_close(bool keep = true);

    /// False once closed or moved from.
    bool is_open() const noexcept;

    /// The file descriptor, for an external event loop (POLLIN: data to read,
    /// POLLOUT: room to write, POLLHUP: device gone); -1 when closed. It is
    /// non-blocking; libio owns it.
    int fd() const noexcept;

    /// The path the port was opened by.
    const std::filesystem::path& path() const;

    /// The kernel driver of the port's device ("serial" or "port" for 8250
    /// UARTs, "ftdi_sio", "pty"), as named in error messages.
    const std::string& driver() const;

    /// Validates s, applies it and reads back what the driver accepted: the
    /// line settings (TCSETS2 then TCGETS2) and the mode (TIOCSRS485, which
    /// writes back its result). Drivers may adjust a field to what the
    /// hardware can do (a pty is always 8 data bits without parity; RS-485
    /// flags a transceiver lacks are dropped): compare the result with s.
    /// \throws io::invalid_argument when s is invalid (the port is untouched).
    /// \throws std::system_error EINVAL when the driver refused the baud rate
    ///         (read back more than 3% off; 8250 drivers keep the old rate
    ///         above the UART's maximum), or ENOTTY/EINVAL/EOPNOTSUPP with
    ///         "RS-485 not supported by driver X on PORT" when the mode needs
    ///         TIOCSRS485 and the driver lacks it. The port's previous settings
    ///         are put back after a failure.
    serial_settings apply(const serial_settings& s);

    /// What the port is set to now, read from the driver.
    serial_settings settings() const;

    /// Low-latency mode: ASYNC_LOW_LATENCY (TIOCSSERIAL), and on FTDI
    /// adapters a latency_timer of 1 ms instead of the default 16 ms (the
    /// time the chip holds a partial USB packet). Undone at close.
    /// \throws std::system_error ENOTTY "low latency not supported by driver
    ///         X on PORT" on ttys without serial_struct (ptys).
    void set_low_latency(bool on);
    /// True when ASYNC_LOW_LATENCY is set.
    bool low_latency() const;
    /// The FTDI latency_timer in ms, or -1 when the device has none.
    int latency_timer() const;

    /// The modem lines now (TIOCMGET).
    modem_lines modem() const;
    /// Sets DTR (TIOCMBIS/TIOCMBIC).
    void set_dtr(bool on);
    /// Sets RTS; not while RTS/CTS flow control or RS-485 drive it.
    void set_rts(bool on);

    /// Blocks until one of the input lines marked true in `which` (cts, dsr,
    /// dcd, ri) changes (TIOCMIWAIT), then returns the lines. There is no
    /// timeout: a signal ends the wait (std::errc::interrupted) and so does
    /// the device's removal ("device removed").
    /// \throws io::invalid_argument when `which` marks no input line.
    modem_lines wait_modem_change(const modem_lines& which);
    modem_lines wait_modem_change(const modem_lines& which, std::error_code& ec) noexcept;

    /// Sends a break for about `duration` (TIOCSBRK, sleep, TIOCCBRK).
    void send_break(std::chrono::milliseconds duration);
    /// Holds the line in break, or releases it.
    void set_break(bool on);

    /// Blocks until all written data has left the UART (tcdrain). With flow
    /// control stopping the sender this waits until the peer lets it go.
    void drain();
    /// Discards data received but not read, written but not sent, or both.
    void flush(serial_queue q);
    /// Bytes received and not read yet (FIONREAD).
    std::size_t available() const;
    /// The driver's counters (TIOCGICOUNT).
    serial_counters counters() const;

    /// Reads what has come, waiting up to `timeout` for the first byte.
    /// \returns the number of bytes read; 0 when the timeout passed.
    std::size_t read_some(std::span<std::byte> buf, std::chrono::microseconds timeout);
    std::size_t read_some(std::span<std::byte> buf, std::chrono::microseconds timeout,
                          std::error_code& ec) noexcept;

    /// Reads until buf is full or a timeout of `t` ends the read (see
    /// read_timeouts). A timeout is not an error.
    /// \returns the number of bytes read (fewer than buf.size() on a timeout).
    /// \throws std::system_error on an error; the bytes read before it are
    ///         lost to the caller: use the error_code overload to keep them.
    std::size_t read(std::span<std::byte> buf, const read_timeouts& t);
    /// As above; on an error sets ec and returns the bytes read before it.
    std::size_t read(std::span<std::byte> buf, const read_timeouts& t, std::error_code& ec) noexcept;

    /// Writes all of data, waiting for room up to `timeout` in all.
    /// \returns data.size(), or fewer when the timeout passed first (the
    ///          output was held up: flow control, a stalled device).
    /// \throws std::system_error on an error, its message saying how many
    ///         bytes were written before it ("write /dev/ttyUSB0 (512 of 1024
    ///         bytes written): device removed: ...").
    std::size_t write(std::span<const std::byte> data, std::chrono::microseconds timeout = no_timeout);
    /// As above; on an error sets ec and returns the bytes written before it.
    std::size_t write(std::span<const std::byte> data, std::chrono::microseconds timeout,
                      std::error_code& ec) noexcept;

private:
    struct impl;
    impl& state() const;

    std::unique_ptr<impl> impl_;
};

/// Calls cb from the loop whenever the port has received data (read it in
/// cb with read_some(); data left unread calls again). When the port fails
/// (device removed), cb gets the error once and the port is not watched
/// any more. The port must outlive the registration.
LIBIO_EXPORT registration on_serial_data(event_loop& loop, serial_port& port, std::function<void(std::error_code)> cb);

/// Calls cb from the loop when the port's modem lines change. The kernel's
/// TIOCMIWAIT blocks and cannot be polled, so the lines are sampled every
/// `period` (a change shorter than the period may be missed; use
/// serial_port::wait_modem_change in a thread of its own to see every one).
/// Errors reach cb once, with the last known lines, and sampling stops.
LIBIO_EXPORT registration on_modem_change(event_loop& loop, serial_port& port, std::chrono::milliseconds period,
                                          std::function<void(const modem_lines&, std::error_code)> cb);

}  // namespace io
