// SPDX-License-Identifier: MIT
#include <io/error.hpp>
#include <io/serial_settings.hpp>

#include <string>
#include <type_traits>

namespace io {
namespace {

[[noreturn]] void refuse(const std::string& what) {
    throw io::invalid_argument("serial_settings: " + what);
}

template <typename E>
long long underlying(E e) {
    return static_cast<long long>(static_cast<std::underlying_type_t<E>>(e));
}

// An enum value outside its enumerators can only come from a cast; refuse it
// like any other out-of-range value.
template <typename E>
void check_enum(const char* field, E e, E last, const char* allowed) {
    if (underlying(e) < 0 || underlying(e) > underlying(last))
        refuse(std::string(field) + " " + std::to_string(underlying(e)) + " is not valid; allowed " + allowed);
}

void check_delay(const char* field, std::chrono::milliseconds d) {
    if (d.count() < 0 || d > serial_settings::max_rs485_delay)
        refuse(std::string(field) + " " + std::to_string(d.count()) + " ms is out of range; allowed 0 to " +
               std::to_string(serial_settings::max_rs485_delay.count()) + " ms");
}

}  // namespace

serial_settings& serial_settings::set_baud(std::uint32_t baud) {
    if (baud < min_baud || baud > max_baud)
        refuse("baud " + std::to_string(baud) + " is out of range; allowed " + std::to_string(min_baud) + " to " +
               std::to_string(max_baud));
    baud_ = baud;
    return *this;
}

serial_settings& serial_settings::set_data_bits(unsigned bits) {
    if (bits < min_data_bits || bits > max_data_bits)
        refuse("data_bits " + std::to_string(bits) + " is out of range; allowed " + std::to_string(min_data_bits) +
               " to " + std::to_string(max_data_bits));
    data_bits_ = bits;
    return *this;
}

serial_settings& serial_settings::set_parity(io::parity p) {
    check_enum("parity", p, io::parity::space, "none, odd, even, mark, space");
    parity_ = p;
    return *this;
}

serial_settings& serial_settings::set_stop_bits(io::stop_bits s) {
    check_enum("stop_bits", s, io::stop_bits::two, "one, two");
    stop_bits_ = s;
    return *this;
}

serial_settings& serial_settings::set_flow_control(io::flow_control f) {
    check_enum("flow_control", f, io::flow_control::xon_xoff, "none, rts_cts, xon_xoff");
    flow_control_ = f;
    return *this;
}

serial_settings& serial_settings::set_mode(serial_mode m) {
    check_enum("mode", m, serial_mode::rs485, "rs232, rs422, rs485");
    mode_ = m;
    return *this;
}

serial_settings& serial_settings::set_rts_on_send(rts_level level) {
    check_enum("rts_on_send", level, rts_level::low, "high, low");
    rts_on_send_ = level;
    return *this;
}

serial_settings& serial_settings::set_delay_before_send(std::chrono::milliseconds d) {
    check_delay("delay_before_send", d);
    delay_before_send_ = d;
    return *this;
}

serial_settings& serial_settings::set_delay_after_send(std::chrono::milliseconds d) {
    check_delay("delay_after_send", d);
    delay_after_send_ = d;
    return *this;
}

serial_settings& serial_settings::set_receive_during_send(bool on) {
    receive_during_send_ = on;
    return *this;
}

serial_settings& serial_settings::set_termination(bool on) {
    termination_ = on;
    return *this;
}

void serial_settings::validate() const {
    // Each setter checked its own field; a default-constructed or copied value
    // went through them too, but re-check so validate() stands on its own.
    serial_settings check;
    check.set_baud(baud_)
        .set_data_bits(data_bits_)
        .set_parity(parity_)
        .set_stop_bits(stop_bits_)
        .set_flow_control(flow_control_)
        .set_mode(mode_)
        .set_rts_on_send(rts_on_send_)
        .set_delay_before_send(delay_before_send_)
        .set_delay_after_send(delay_after_send_);
    if (mode_ == serial_mode::rs485 && flow_control_ == io::flow_control::rts_cts)
        refuse("flow_control rts_cts is not allowed with mode rs485, where RTS switches the transmitter; "
               "allowed none, xon_xoff");
}

const char* to_string(parity p) noexcept {
    switch (p) {
    case parity::none: return "none";
    case parity::odd: return "odd";
    case parity::even: return "even";
    case parity::mark: return "mark";
    case parity::space: return "space";
    }
    return "invalid";
}

const char* to_string(stop_bits s) noexcept {
    switch (s) {
    case stop_bits::one: return "one";
    case stop_bits::two: return "two";
    }
    return "invalid";
}

const char* to_string(flow_control f) noexcept {
    switch (f) {
    case flow_control::none: return "none";
    case flow_control::rts_cts: return "rts_cts";
    case flow_control::xon_xoff: return "xon_xoff";
    }
    return "invalid";
}

const char* to_string(serial_mode m) noexcept {
    switch (m) {
    case serial_mode::rs232: return "rs232";
    case serial_mode::rs422: return "rs422";
    case serial_mode::rs485: return "rs485";
    }
    return "invalid";
}

const char* to_string(rts_level l) noexcept {
    switch (l) {
    case rts_level::high: return "high";
    case rts_level::low: return "low";
    }
    return "invalid";
}

std::string to_string(const serial_settings& s) {
    static constexpr char parity_letter[] = {'N', 'O', 'E', 'M', 'S'};
    const auto p = static_cast<std::size_t>(s.parity());
    std::string out = std::to_string(s.baud()) + ' ' + std::to_string(s.data_bits()) +
                      (p < sizeof parity_letter ? parity_letter[p] : '?') +
                      (s.stop_bits() == stop_bits::two ? '2' : '1');
    if (s.flow_control() != flow_control::none)
        out += std::string(" ") + to_string(s.flow_control());
    if (s.mode() != serial_mode::rs232)
        out += std::string(" ") + to_string(s.mode());
    if (s.mode() == serial_mode::rs485)
        out += std::string(" rts=") + to_string(s.rts_on_send()) +
               " before=" + std::to_string(s.delay_before_send().count()) +
               "ms after=" + std::to_string(s.delay_after_send().count()) + "ms" +
               (s.receive_during_send() ? " rx_during_tx" : "");
    if (s.mode() != serial_mode::rs232 && s.termination())
        out += " termination";
    return out;
}

}  // namespace io
