// SPDX-License-Identifier: MIT
// io::serial_settings: every field's range, refused with a message naming the
// field and what is allowed; and its encoding into the kernel's termios2 and
// serial_rs485 and back.
#include "serial_codec.hpp"

#include <io/error.hpp>
#include <io/serial_settings.hpp>

#include <gtest/gtest.h>

#include <functional>
#include <string>

namespace {

using namespace std::chrono_literals;
using io::serial_settings;

/// The message of the io::invalid_argument that fn throws, or "" if none.
std::string refusal(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const io::invalid_argument& e) {
        return e.what();
    }
    return {};
}

TEST(serial_settings, defaults_are_115200_8n1_rs232) {
    const serial_settings s;
    EXPECT_EQ(s.baud(), 115200U);
    EXPECT_EQ(s.data_bits(), 8U);
    EXPECT_EQ(s.parity(), io::parity::none);
    EXPECT_EQ(s.stop_bits(), io::stop_bits::one);
    EXPECT_EQ(s.flow_control(), io::flow_control::none);
    EXPECT_EQ(s.mode(), io::serial_mode::rs232);
    EXPECT_NO_THROW(s.validate());
    EXPECT_EQ(to_string(s), "115200 8N1");
}

TEST(serial_settings, names_read_back_to_the_values_to_string_gives) {
    for (const auto p : {io::parity::none, io::parity::odd, io::parity::even, io::parity::mark, io::parity::space})
        EXPECT_EQ(io::parse_parity(io::to_string(p)), p);
    for (const auto s : {io::stop_bits::one, io::stop_bits::two})
        EXPECT_EQ(io::parse_stop_bits(io::to_string(s)), s);
    for (const auto f : {io::flow_control::none, io::flow_control::rts_cts, io::flow_control::xon_xoff})
        EXPECT_EQ(io::parse_flow_control(io::to_string(f)), f);
    for (const auto m : {io::serial_mode::rs232, io::serial_mode::rs422, io::serial_mode::rs485})
        EXPECT_EQ(io::parse_serial_mode(io::to_string(m)), m);
    for (const auto l : {io::rts_level::high, io::rts_level::low})
        EXPECT_EQ(io::parse_rts_level(io::to_string(l)), l);
    EXPECT_EQ(io::parse_parity("E"), io::parity::even);
    EXPECT_EQ(io::parse_parity("S"), io::parity::space);
    EXPECT_EQ(io::parse_stop_bits("2"), io::stop_bits::two);
    EXPECT_STREQ(io::to_string(io::parity::none), "none");  // the name, not the letter
    EXPECT_STREQ(io::to_string(io::stop_bits::two), "two");
}

TEST(serial_settings, unknown_names_are_refused_with_what_is_allowed) {
    EXPECT_EQ(refusal([] { (void)io::parse_parity("e"); }),
              "parity 'e' is not valid; allowed none, odd, even, mark, space (or N, O, E, M, S)");
    EXPECT_EQ(refusal([] { (void)io::parse_stop_bits("1.5"); }), "stop bits '1.5' is not valid; allowed one, two (or 1, 2)");
    EXPECT_EQ(refusal([] { (void)io::parse_flow_control("rtscts"); }),
              "flow control 'rtscts' is not valid; allowed none, rts_cts, xon_xoff");
    EXPECT_EQ(refusal([] { (void)io::parse_serial_mode("RS485"); }), "mode 'RS485' is not valid; allowed rs232, rs422, rs485");
    EXPECT_EQ(refusal([] { (void)io::parse_rts_level(""); }), "RTS level '' is not valid; allowed high, low");
}

TEST(serial_settings, setters_chain_and_read_back) {
    const auto s = serial_settings{}
                       .set_baud(9600)
                       .set_data_bits(7)
                       .set_parity(io::parity::even)
                       .set_stop_bits(io::stop_bits::two)
                       .set_flow_control(io::flow_control::rts_cts);
    EXPECT_EQ(s.baud(), 9600U);
    EXPECT_EQ(s.data_bits(), 7U);
    EXPECT_EQ(to_string(s), "9600 7E2 rts_cts");
    const auto r = serial_settings{}
                       .set_mode(io::serial_mode::rs485)
                       .set_rts_on_send(io::rts_level::low)
                       .set_delay_before_send(2ms)
                       .set_delay_after_send(100ms)
                       .set_receive_during_send(true)
                       .set_termination(true);
    EXPECT_EQ(to_string(r), "115200 8N1 rs485 rts=low before=2ms after=100ms rx_during_tx termination");
    EXPECT_NE(r, serial_settings{});
    EXPECT_EQ(r, r);
}

TEST(serial_settings, arbitrary_baud_rates_in_range_are_accepted) {
    for (const std::uint32_t b : {50U, 75U, 31250U, 250000U, 1234567U, 3000000U, 20000000U})
        EXPECT_EQ(serial_settings{}.set_baud(b).baud(), b);
}

TEST(serial_settings, baud_out_of_range_is_refused_naming_the_range) {
    EXPECT_EQ(refusal([] { serial_settings{}.set_baud(0); }),
              "serial_settings: baud 0 is out of range; allowed 50 to 20000000");
    EXPECT_EQ(refusal([] { serial_settings{}.set_baud(49); }),
              "serial_settings: baud 49 is out of range; allowed 50 to 20000000");
    EXPECT_EQ(refusal([] { serial_settings{}.set_baud(20000001); }),
              "serial_settings: baud 20000001 is out of range; allowed 50 to 20000000");
}

TEST(serial_settings, data_bits_out_of_range_are_refused) {
    EXPECT_EQ(refusal([] { serial_settings{}.set_data_bits(4); }),
              "serial_settings: data_bits 4 is out of range; allowed 5 to 8");
    EXPECT_EQ(refusal([] { serial_settings{}.set_data_bits(9); }),
              "serial_settings: data_bits 9 is out of range; allowed 5 to 8");
    for (unsigned b = 5; b <= 8; ++b)
        EXPECT_EQ(serial_settings{}.set_data_bits(b).data_bits(), b);
}

TEST(serial_settings, enum_values_outside_their_enumerators_are_refused) {
    EXPECT_EQ(refusal([] { serial_settings{}.set_parity(static_cast<io::parity>(5)); }),
              "serial_settings: parity 5 is not valid; allowed none, odd, even, mark, space");
    EXPECT_EQ(refusal([] { serial_settings{}.set_stop_bits(static_cast<io::stop_bits>(2)); }),
              "serial_settings: stop_bits 2 is not valid; allowed one, two");
    EXPECT_EQ(refusal([] { serial_settings{}.set_flow_control(static_cast<io::flow_control>(3)); }),
              "serial_settings: flow_control 3 is not valid; allowed none, rts_cts, xon_xoff");
    EXPECT_EQ(refusal([] { serial_settings{}.set_mode(static_cast<io::serial_mode>(-1)); }),
              "serial_settings: mode -1 is not valid; allowed rs232, rs422, rs485");
    EXPECT_EQ(refusal([] { serial_settings{}.set_rts_on_send(static_cast<io::rts_level>(7)); }),
              "serial_settings: rts_on_send 7 is not valid; allowed high, low");
}

TEST(serial_settings, rs485_delays_out_of_range_are_refused) {
    EXPECT_EQ(refusal([] { serial_settings{}.set_delay_before_send(101ms); }),
              "serial_settings: delay_before_send 101 ms is out of range; allowed 0 to 100 ms");
    EXPECT_EQ(refusal([] { serial_settings{}.set_delay_after_send(-1ms); }),
              "serial_settings: delay_after_send -1 ms is out of range; allowed 0 to 100 ms");
    EXPECT_EQ(serial_settings{}.set_delay_after_send(100ms).delay_after_send(), 100ms);
}

TEST(serial_settings, rts_cts_flow_control_is_refused_in_rs485_mode) {
    const auto s = serial_settings{}.set_flow_control(io::flow_control::rts_cts).set_mode(io::serial_mode::rs485);
    EXPECT_EQ(refusal([&] { s.validate(); }),
              "serial_settings: flow_control rts_cts is not allowed with mode rs485, where RTS switches the "
              "transmitter; allowed none, xon_xoff");
    EXPECT_NO_THROW(serial_settings{}.set_flow_control(io::flow_control::xon_xoff).set_mode(io::serial_mode::rs485).validate());
    EXPECT_NO_THROW(serial_settings{}.set_flow_control(io::flow_control::rts_cts).set_mode(io::serial_mode::rs422).validate());
}

TEST(serial_settings, a_refused_value_leaves_the_settings_unchanged) {
    auto s = serial_settings{}.set_baud(9600);
    EXPECT_THROW(s.set_baud(0), io::invalid_argument);
    EXPECT_EQ(s.baud(), 9600U);
}

// The codec, on a termios2 as a fresh tty has it (cooked mode).
termios2 cooked() {
    termios2 t{};
    t.c_iflag = ICRNL | IXON | IMAXBEL | IUTF8 | BRKINT;
    t.c_oflag = OPOST | ONLCR;
    t.c_cflag = B9600 | CS8 | CREAD | HUPCL;
    t.c_lflag = ISIG | ICANON | ECHO | ECHOE | ECHOK | IEXTEN;
    t.c_cc[VMIN] = 1;
    t.c_cc[VINTR] = 3;
    t.c_ispeed = t.c_ospeed = 9600;
    return t;
}

TEST(serial_codec, standard_rates_use_their_code_others_bother) {
    auto t = cooked();
    io::detail::encode_termios(serial_settings{}.set_baud(115200), t);
    EXPECT_EQ(t.c_cflag & CBAUD, static_cast<tcflag_t>(B115200));
    EXPECT_EQ(t.c_cflag & CIBAUD, 0U) << "the input rate follows the output rate";
    EXPECT_EQ(io::detail::decode_baud(t), 115200U);

    io::detail::encode_termios(serial_settings{}.set_baud(250000), t);
    EXPECT_EQ(t.c_cflag & CBAUD, static_cast<tcflag_t>(BOTHER));
    EXPECT_EQ(t.c_ospeed, 250000U);
    EXPECT_EQ(t.c_ispeed, 250000U);
    EXPECT_EQ(io::detail::decode_baud(t), 250000U);

    io::detail::encode_termios(serial_settings{}.set_baud(3000000), t);
    EXPECT_EQ(t.c_cflag & CBAUD, static_cast<tcflag_t>(B3000000));
    EXPECT_EQ(io::detail::standard_baud_code(31250), 0U);
    EXPECT_EQ(io::detail::standard_baud_code(50), static_cast<unsigned>(B50));
}

TEST(serial_codec, raw_mode_and_kept_flags) {
    auto t = cooked();
    io::detail::encode_termios(serial_settings{}, t);
    EXPECT_EQ(t.c_lflag & (ICANON | ECHO | ISIG | IEXTEN), 0U);
    EXPECT_EQ(t.c_oflag & OPOST, 0U);
    EXPECT_EQ(t.c_iflag & (ICRNL | IXON | BRKINT | INPCK), 0U);
    EXPECT_NE(t.c_cflag & CLOCAL, 0U);
    EXPECT_NE(t.c_cflag & CREAD, 0U);
    EXPECT_NE(t.c_cflag & HUPCL, 0U) << "HUPCL is the port owner's choice and stays";
    EXPECT_EQ(t.c_cc[VMIN], 1);
    EXPECT_EQ(t.c_cc[VTIME], 0);
    EXPECT_EQ(t.c_cc[VINTR], 3);
}

struct frame_case {
    unsigned data_bits;
    io::parity parity;
    io::stop_bits stop;
    tcflag_t cflag;  // CSIZE | PARENB | PARODD | CMSPAR | CSTOPB
};

TEST(serial_codec, framing_round_trips) {
    const frame_case cases[] = {
        {8, io::parity::none, io::stop_bits::one, CS8},
        {7, io::parity::even, io::stop_bits::two, CS7 | PARENB | CSTOPB},
        {7, io::parity::odd, io::stop_bits::one, CS7 | PARENB | PARODD},
        {8, io::parity::mark, io::stop_bits::one, CS8 | PARENB | PARODD | CMSPAR},
        {8, io::parity::space, io::stop_bits::two, CS8 | PARENB | CMSPAR | CSTOPB},
        {5, io::parity::none, io::stop_bits::two, CS5 | CSTOPB},
        {6, io::parity::odd, io::stop_bits::one, CS6 | PARENB | PARODD},
    };
    for (const auto& c : cases) {
        const auto s = serial_settings{}.set_data_bits(c.data_bits).set_parity(c.parity).set_stop_bits(c.stop);
        auto t = cooked();
        io::detail::encode_termios(s, t);
        EXPECT_EQ(t.c_cflag & (CSIZE | PARENB | PARODD | CMSPAR | CSTOPB), c.cflag) << to_string(s);
        EXPECT_EQ((t.c_iflag & INPCK) != 0, c.parity != io::parity::none) << to_string(s);
        EXPECT_EQ(io::detail::decode_termios(t, {}), s) << to_string(s);
    }
}

TEST(serial_codec, flow_control_round_trips) {
    for (const auto f : {io::flow_control::none, io::flow_control::rts_cts, io::flow_control::xon_xoff}) {
        const auto s = serial_settings{}.set_flow_control(f);
        auto t = cooked();
        io::detail::encode_termios(s, t);
        EXPECT_EQ((t.c_cflag & CRTSCTS) != 0, f == io::flow_control::rts_cts);
        EXPECT_EQ((t.c_iflag & (IXON | IXOFF)) == (IXON | IXOFF), f == io::flow_control::xon_xoff);
        EXPECT_EQ(io::detail::decode_termios(t, {}).flow_control(), f);
    }
}

TEST(serial_codec, rs485_request_and_read_back) {
    const auto s = serial_settings{}
                       .set_mode(io::serial_mode::rs485)
                       .set_rts_on_send(io::rts_level::high)
                       .set_delay_before_send(3ms)
                       .set_delay_after_send(5ms)
                       .set_receive_during_send(true);
    const auto r = io::detail::encode_rs485(s);
    EXPECT_EQ(r.flags, SER_RS485_ENABLED | SER_RS485_RTS_ON_SEND | SER_RS485_RX_DURING_TX);
    EXPECT_EQ(r.delay_rts_before_send, 3U);
    EXPECT_EQ(r.delay_rts_after_send, 5U);
    EXPECT_EQ(io::detail::decode_rs485(r, {}), s);

    const auto low = io::detail::encode_rs485(serial_settings{}.set_mode(io::serial_mode::rs485).set_rts_on_send(io::rts_level::low));
    EXPECT_EQ(low.flags, SER_RS485_ENABLED | SER_RS485_RTS_AFTER_SEND);

    // A driver that dropped what its transceiver lacks: the read-back says so.
    auto clipped = r;
    clipped.flags &= ~static_cast<__u32>(SER_RS485_RX_DURING_TX);
    clipped.delay_rts_before_send = 0;
    const auto back = io::detail::decode_rs485(clipped, s);
    EXPECT_FALSE(back.receive_during_send());
    EXPECT_EQ(back.delay_before_send(), 0ms);
}

TEST(serial_codec, rs422_and_rs232) {
    const auto rs422 = serial_settings{}.set_mode(io::serial_mode::rs422).set_termination(true);
    const auto r = io::detail::encode_rs485(rs422);
    EXPECT_EQ(r.flags, SER_RS485_ENABLED | SER_RS485_MODE_RS422 | SER_RS485_TERMINATE_BUS);
    EXPECT_EQ(io::detail::decode_rs485(r, {}), rs422);
    EXPECT_EQ(io::detail::encode_rs485(serial_settings{}).flags, 0U);
    // RS-485 fields of a port in RS-232 read as defaults.
    const auto leftover = serial_settings{}.set_delay_after_send(7ms).set_receive_during_send(true);
    EXPECT_EQ(io::detail::decode_rs485(serial_rs485{}, leftover), serial_settings{});
}

}  // namespace

TEST(serial_codec, a_fresh_tty_with_ixon_alone_has_no_flow_control) {
    EXPECT_EQ(io::detail::decode_termios(cooked(), serial_settings{}).flow_control(), io::flow_control::none)
        << "IXON alone (a tty's default) is not XON/XOFF flow control; that takes IXON and IXOFF";
    auto t = cooked();
    t.c_iflag |= IXOFF;
    EXPECT_EQ(io::detail::decode_termios(t, serial_settings{}).flow_control(), io::flow_control::xon_xoff);
}

TEST(serial_codec, keeping_line_settings_takes_only_the_line_fields) {
    // What a port was (cooked) and what it is now (raw, 57600 7E2 XON/XOFF):
    // a kept close puts back the cooked flags and keeps the line.
    const auto before = cooked();
    auto now = before;
    io::detail::encode_termios(serial_settings{}
                                   .set_baud(57600)
                                   .set_data_bits(7)
                                   .set_parity(io::parity::even)
                                   .set_stop_bits(io::stop_bits::two)
                                   .set_flow_control(io::flow_control::xon_xoff),
                               now);
    const auto kept = io::detail::keep_line_settings(before, now);
    EXPECT_EQ(io::detail::decode_termios(kept, {}), io::detail::decode_termios(now, {}));
    EXPECT_EQ(kept.c_cflag & CBAUD, static_cast<tcflag_t>(B57600));
    EXPECT_EQ(kept.c_ospeed, 57600U);
    EXPECT_EQ(kept.c_lflag, before.c_lflag) << "line editing and echo come back";
    EXPECT_EQ(kept.c_oflag, before.c_oflag);
    EXPECT_EQ(kept.c_iflag & ~static_cast<tcflag_t>(IXON | IXOFF | IXANY),
              before.c_iflag & ~static_cast<tcflag_t>(IXON | IXOFF | IXANY));
    EXPECT_EQ(kept.c_cflag & static_cast<tcflag_t>(CREAD | CLOCAL | HUPCL),
              before.c_cflag & static_cast<tcflag_t>(CREAD | CLOCAL | HUPCL))
        << "CLOCAL was libio's raw-mode choice, not a line setting";
    EXPECT_EQ(kept.c_cc[VMIN], before.c_cc[VMIN]);
    EXPECT_EQ(kept.c_cc[VINTR], before.c_cc[VINTR]);

    // Flow control off is kept too: IXON of the cooked tty goes.
    auto plain = before;
    io::detail::encode_termios(serial_settings{}.set_baud(9600), plain);
    EXPECT_EQ(io::detail::keep_line_settings(before, plain).c_iflag & static_cast<tcflag_t>(IXON), 0U);
}
