// SPDX-License-Identifier: MIT
#pragma once

#include <io/export.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace io {

namespace detail {
struct serial_settings_access;
}

/// Parity bit of each character. mark and space use CMSPAR (a parity bit
/// that is always 1 or always 0), as 9-bit addressing protocols do.
enum class parity { none, odd, even, mark, space };

/// Stop bits after each character. With 5 data bits, two means 1.5 bit
/// times on the wire (the UART's rule, not libio's).
enum class stop_bits { one, two };

/// How the sender is paced. rts_cts is hardware flow control (CRTSCTS),
/// xon_xoff is software flow control in both directions (IXON and IXOFF).
enum class flow_control { none, rts_cts, xon_xoff };

/// The electrical mode of the port's transceiver. rs232 is full duplex with
/// modem lines; rs422 is full duplex differential; rs485 is half duplex with
/// the transmitter switched on by RTS while sending. rs422 and rs485 are set
/// with TIOCSRS485 and need a driver that implements it.
enum class serial_mode { rs232, rs422, rs485 };

/// The level of RTS while the RS-485 transmitter sends; after sending RTS
/// takes the other level (SER_RS485_RTS_ON_SEND / SER_RS485_RTS_AFTER_SEND).
enum class rts_level { high, low };

/// Everything about how a serial port frames and paces characters: a plain,
/// copyable value. Setters check their value at once and throw
/// io::invalid_argument naming the field and its allowed range, so nothing
/// invalid reaches a port; validate() also checks how the fields combine.
///
/// The default is 115200 baud, 8 data bits, no parity, 1 stop bit, no flow
/// control, RS-232.
class LIBIO_EXPORT serial_settings {
public:
    /// Lowest and highest baud rate accepted (characters are still refused
    /// by a driver whose UART cannot reach the rate; see serial_port::apply).
    static constexpr std::uint32_t min_baud = 50;
    static constexpr std::uint32_t max_baud = 20'000'000;
    static constexpr unsigned min_data_bits = 5;
    static constexpr unsigned max_data_bits = 8;
    /// The kernel's limit on each RS-485 RTS delay (serial_core clamps to it).
    static constexpr std::chrono::milliseconds max_rs485_delay{100};

    /// Baud rate in bits per second, any value in [min_baud, max_baud]: the
    /// standard rates use their Bnnn code, the others termios2's BOTHER.
    serial_settings& set_baud(std::uint32_t baud);
    /// Data bits per character, 5 to 8.
    serial_settings& set_data_bits(unsigned bits);
    serial_settings& set_parity(io::parity p);
    serial_settings& set_stop_bits(io::stop_bits s);
    serial_settings& set_flow_control(io::flow_control f);
    serial_settings& set_mode(serial_mode m);

    /// RS-485 only: the level of RTS while sending.
    serial_settings& set_rts_on_send(rts_level level);
    /// RS-485 only: delay between RTS switching on and the first bit, 0 to 100 ms.
    serial_settings& set_delay_before_send(std::chrono::milliseconds d);
    /// RS-485 only: delay between the last bit and RTS switching off, 0 to 100 ms.
    serial_settings& set_delay_after_send(std::chrono::milliseconds d);
    /// RS-485 only: keep the receiver on while sending (hear one's own echo).
    serial_settings& set_receive_during_send(bool on);
    /// RS-485 and RS-422: switch on the card's bus termination resistor.
    serial_settings& set_termination(bool on);

    std::uint32_t baud() const noexcept { return baud_; }
    unsigned data_bits() const noexcept { return data_bits_; }
    io::parity parity() const noexcept { return parity_; }
    io::stop_bits stop_bits() const noexcept { return stop_bits_; }
    io::flow_control flow_control() const noexcept { return flow_control_; }
    serial_mode mode() const noexcept { return mode_; }
    rts_level rts_on_send() const noexcept { return rts_on_send_; }
    std::chrono::milliseconds delay_before_send() const noexcept { return delay_before_send_; }
    std::chrono::milliseconds delay_after_send() const noexcept { return delay_after_send_; }
    bool receive_during_send() const noexcept { return receive_during_send_; }
    bool termination() const noexcept { return termination_; }

    /// Checks every field and how they combine (RTS/CTS flow control cannot
    /// be used in RS-485 mode, where RTS switches the transmitter).
    /// \throws io::invalid_argument naming the field and what is allowed.
    void validate() const;

    friend bool operator==(const serial_settings&, const serial_settings&) = default;

private:
    friend struct detail::serial_settings_access;  // read-back from a port, unchecked

    std::uint32_t baud_ = 115200;
    unsigned data_bits_ = 8;
    io::parity parity_ = io::parity::none;
    io::stop_bits stop_bits_ = io::stop_bits::one;
    io::flow_control flow_control_ = io::flow_control::none;
    serial_mode mode_ = serial_mode::rs232;
    rts_level rts_on_send_ = rts_level::high;
    std::chrono::milliseconds delay_before_send_{0};
    std::chrono::milliseconds delay_after_send_{0};
    bool receive_during_send_ = false;
    bool termination_ = false;
};

/// The settings as one line: "115200 8N1", then the flow control and mode
/// when not the default ("9600 7E2 rts_cts", "19200 8N1 rs485 rts=high
/// before=1ms after=0ms"). Parity letters: N O E M S.
LIBIO_EXPORT std::string to_string(const serial_settings& s);

LIBIO_EXPORT const char* to_string(parity p) noexcept;
LIBIO_EXPORT const char* to_string(stop_bits s) noexcept;
LIBIO_EXPORT const char* to_string(flow_control f) noexcept;
LIBIO_EXPORT const char* to_string(serial_mode m) noexcept;
LIBIO_EXPORT const char* to_string(rts_level l) noexcept;

/// The value to_string() names, read back from text; the parity also as its
/// letter (N, O, E, M, S), the stop bits also as 1 or 2. Names are exact
/// (lower case, the letters upper case).
/// \throws io::invalid_argument naming the text and listing what is allowed
///         ("parity 'x' is not valid; allowed none, odd, even, mark, space
///         (or N, O, E, M, S)").
LIBIO_EXPORT parity parse_parity(std::string_view text);
LIBIO_EXPORT stop_bits parse_stop_bits(std::string_view text);
LIBIO_EXPORT flow_control parse_flow_control(std::string_view text);
LIBIO_EXPORT serial_mode parse_serial_mode(std::string_view text);
LIBIO_EXPORT rts_level parse_rts_level(std::string_view text);

}  // namespace io
