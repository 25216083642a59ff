// SPDX-License-Identifier: MIT
#include "serial_codec.hpp"

#include <array>
#include <utility>

namespace io::detail {
namespace {

using rate = std::pair<std::uint32_t, unsigned>;
constexpr std::array<rate, 31> rates{{
    {50, B50},           {75, B75},           {110, B110},         {134, B134},         {150, B150},
    {200, B200},         {300, B300},         {600, B600},         {1200, B1200},       {1800, B1800},
    {2400, B2400},       {4800, B4800},       {9600, B9600},       {19200, B19200},     {38400, B38400},
    {57600, B57600},     {115200, B115200},   {230400, B230400},   {460800, B460800},   {500000, B500000},
    {576000, B576000},   {921600, B921600},   {1000000, B1000000}, {1152000, B1152000}, {1500000, B1500000},
    {2000000, B2000000}, {2500000, B2500000}, {3000000, B3000000}, {3500000, B3500000}, {4000000, B4000000},
    {0, B0},
}};

constexpr tcflag_t bits(unsigned v) noexcept {
    return static_cast<tcflag_t>(v);
}

}  // namespace

unsigned standard_baud_code(std::uint32_t baud) noexcept {
    for (const auto& [r, code] : rates)
        if (r == baud && baud != 0)
            return code;
    return 0;
}

void encode_termios(const serial_settings& s, termios2& t) noexcept {
    t.c_iflag &= ~bits(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON | IXOFF | IXANY | INPCK |
                       IGNPAR | IUCLC | IMAXBEL | IUTF8);
    t.c_oflag &= ~bits(OPOST);
    t.c_lflag &= ~bits(ECHO | ECHOE | ECHOK | ECHONL | ICANON | ISIG | IEXTEN | NOFLSH | TOSTOP);
    t.c_cflag &= ~bits(CSIZE | PARENB | PARODD | CMSPAR | CSTOPB | CRTSCTS | CBAUD | CIBAUD);
    t.c_cflag |= bits(CREAD | CLOCAL);

    switch (s.data_bits()) {
    case 5: t.c_cflag |= bits(CS5); break;
    case 6: t.c_cflag |= bits(CS6); break;
    case 7: t.c_cflag |= bits(CS7); break;
    default: t.c_cflag |= bits(CS8); break;
    }
    switch (s.parity()) {
    case parity::none: break;
    case parity::odd: t.c_cflag |= bits(PARENB | PARODD); break;
    case parity::even: t.c_cflag |= bits(PARENB); break;
    case parity::mark: t.c_cflag |= bits(PARENB | CMSPAR | PARODD); break;
    case parity::space: t.c_cflag |= bits(PARENB | CMSPAR); break;
    }
    // Check parity on input; a character that fails reads as NUL and is
    // counted by the driver (serial_port::counters()).
    if (s.parity() != parity::none)
        t.c_iflag |= bits(INPCK);
    if (s.stop_bits() == stop_bits::two)
        t.c_cflag |= bits(CSTOPB);
    switch (s.flow_control()) {
    case flow_control::none: break;
    case flow_control::rts_cts: t.c_cflag |= bits(CRTSCTS); break;
    case flow_control::xon_xoff:
        t.c_iflag |= bits(IXON | IXOFF);
        t.c_cc[VSTART] = 0x11;
        t.c_cc[VSTOP] = 0x13;
        break;
    }

    // CIBAUD stays 0: the input rate follows the output rate.
    const unsigned code = standard_baud_code(s.baud());
    t.c_cflag |= bits(code != 0 ? code : BOTHER);
    t.c_ispeed = s.baud();
    t.c_ospeed = s.baud();

    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
}

std::uint32_t decode_baud(const termios2& t) noexcept {
    const unsigned code = t.c_cflag & bits(CBAUD);
    if (code == BOTHER)
        return t.c_ospeed;
    for (const auto& [r, c] : rates)
        if (c == code)
            return r;
    return t.c_ospeed;
}

serial_settings decode_termios(const termios2& t, serial_settings s) noexcept {
    serial_settings_access::set_baud(s, decode_baud(t));
    switch (t.c_cflag & bits(CSIZE)) {
    case CS5: serial_settings_access::set_data_bits(s, 5); break;
    case CS6: serial_settings_access::set_data_bits(s, 6); break;
    case CS7: serial_settings_access::set_data_bits(s, 7); break;
    default: serial_settings_access::set_data_bits(s, 8); break;
    }
    const bool odd = (t.c_cflag & bits(PARODD)) != 0;
    if ((t.c_cflag & bits(PARENB)) == 0)
        s.set_parity(parity::none);
    else if ((t.c_cflag & bits(CMSPAR)) != 0)
        s.set_parity(odd ? parity::mark : parity::space);
    else
        s.set_parity(odd ? parity::odd : parity::even);
    s.set_stop_bits((t.c_cflag & bits(CSTOPB)) != 0 ? stop_bits::two : stop_bits::one);
    if ((t.c_cflag & bits(CRTSCTS)) != 0)
        s.set_flow_control(flow_control::rts_cts);
    else if ((t.c_iflag & bits(IXON | IXOFF)) == bits(IXON | IXOFF))  // a fresh tty has IXON alone
        s.set_flow_control(flow_control::xon_xoff);
    else
        s.set_flow_control(flow_control::none);
    return s;
}

termios2 keep_line_settings(termios2 restored, const termios2& now) noexcept {
    constexpr auto cflags = bits(CBAUD | CIBAUD | CSIZE | PARENB | PARODD | CMSPAR | CSTOPB | CRTSCTS);
    constexpr auto iflags = bits(IXON | IXOFF | IXANY);
    restored.c_cflag = (restored.c_cflag & ~cflags) | (now.c_cflag & cflags);
    restored.c_iflag = (restored.c_iflag & ~iflags) | (now.c_iflag & iflags);
    restored.c_ispeed = now.c_ispeed;
    restored.c_ospeed = now.c_ospeed;
    return restored;
}

serial_rs485 encode_rs485(const serial_settings& s) noexcept {
    serial_rs485 r{};
    switch (s.mode()) {
    case serial_mode::rs232: break;
    case serial_mode::rs422: r.flags = SER_RS485_ENABLED | SER_RS485_MODE_RS422; break;
    case serial_mode::rs485:
        r.flags = SER_RS485_ENABLED |
                  (s.rts_on_send() == rts_level::high ? SER_RS485_RTS_ON_SEND : SER_RS485_RTS_AFTER_SEND);
        if (s.receive_during_send())
            r.flags |= SER_RS485_RX_DURING_TX;
        r.delay_rts_before_send = static_cast<__u32>(s.delay_before_send().count());
        r.delay_rts_after_send = static_cast<__u32>(s.delay_after_send().count());
        break;
    }
    if (s.mode() != serial_mode::rs232 && s.termination())
        r.flags |= SER_RS485_TERMINATE_BUS;
    return r;
}

serial_settings decode_rs485(const serial_rs485& r, serial_settings s) noexcept {
    // Fields that do not apply to the reported mode read as their defaults, so
    // that settings compare equal whatever a caller left in them.
    s.set_mode(serial_mode::rs232)
        .set_rts_on_send(rts_level::high)
        .set_receive_during_send(false)
        .set_termination(false);
    serial_settings_access::set_delays(s, {}, {});
    if ((r.flags & SER_RS485_ENABLED) == 0)
        return s;
    s.set_termination((r.flags & SER_RS485_TERMINATE_BUS) != 0);
    if ((r.flags & SER_RS485_MODE_RS422) != 0)
        return s.set_mode(serial_mode::rs422);
    s.set_mode(serial_mode::rs485)
        .set_rts_on_send((r.flags & SER_RS485_RTS_ON_SEND) != 0 ? rts_level::high : rts_level::low)
        .set_receive_during_send((r.flags & SER_RS485_RX_DURING_TX) != 0);
    serial_settings_access::set_delays(s, std::chrono::milliseconds{r.delay_rts_before_send},
                                       std::chrono::milliseconds{r.delay_rts_after_send});
    return s;
}

}  // namespace io::detail
