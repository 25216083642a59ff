// SPDX-License-Identifier: MIT
// Conversions between io::serial_settings and the kernel's structures:
// termios2 (line settings, any baud rate through BOTHER) and serial_rs485.
// Includes the kernel's own termios headers, so a file that includes this one
// must not include glibc's <termios.h> or <sys/ioctl.h>. Exported for the
// library's unit tests only.
#pragma once

#include <io/serial_settings.hpp>

#include <asm/termbits.h>
#include <cstdint>
#include <linux/serial.h>

// RS-422 in TIOCSRS485 came with Linux 6.4; older kernels drop the flag, and
// the read-back shows it.
#ifndef SER_RS485_MODE_RS422
#define SER_RS485_MODE_RS422 (1 << 9)
#endif

namespace io::detail {

/// Builds serial_settings from what a port reports, without the setters'
/// range checks: the port's word is reported as it is.
struct serial_settings_access {
    static void set_baud(serial_settings& s, std::uint32_t baud) noexcept { s.baud_ = baud; }
    static void set_data_bits(serial_settings& s, unsigned bits) noexcept { s.data_bits_ = bits; }
    static void set_delays(serial_settings& s, std::chrono::milliseconds before,
                           std::chrono::milliseconds after) noexcept {
        s.delay_before_send_ = before;
        s.delay_after_send_ = after;
    }
};

/// The Bnnn code of a standard rate, or 0 when baud has none.
LIBIO_EXPORT unsigned standard_baud_code(std::uint32_t baud) noexcept;

/// Puts s's line settings into t, in raw mode (no echo, no line editing, no
/// character translation, VMIN 1 VTIME 0), CREAD and CLOCAL on; HUPCL and the
/// other control characters stay as they were. Standard rates use their Bnnn
/// code so that glibc-based tools (stty) read them back; others use BOTHER.
LIBIO_EXPORT void encode_termios(const serial_settings& s, termios2& t) noexcept;

/// The baud rate t sets for output (0 for B0, the hang-up rate).
LIBIO_EXPORT std::uint32_t decode_baud(const termios2& t) noexcept;

/// s with the line settings of t (baud, data bits, parity, stop bits, flow
/// control); s's mode fields are kept.
LIBIO_EXPORT serial_settings decode_termios(const termios2& t, serial_settings s) noexcept;

/// `restored` with the line settings of `now` (speed, data bits, parity,
/// stop bits, CRTSCTS, IXON/IXOFF/IXANY); its other flags, as a restore
/// puts them back, stay. What serial_port::keep_settings_on_close keeps.
LIBIO_EXPORT termios2 keep_line_settings(termios2 restored, const termios2& now) noexcept;

/// The TIOCSRS485 request for s's mode fields.
LIBIO_EXPORT serial_rs485 encode_rs485(const serial_settings& s) noexcept;

/// s with the mode fields of what TIOCGRS485/TIOCSRS485 reported.
LIBIO_EXPORT serial_settings decode_rs485(const serial_rs485& r, serial_settings s) noexcept;

}  // namespace io::detail
