// SPDX-License-Identifier: MIT
#include <io/error.hpp>
#include <io/serial_settings.hpp>

#include <string>
#include <string_view>
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

namespace {

// The one table of each enumeration's names: to_string() gives the first
// name of a value, the parse functions take every name. Short forms (a
// parity letter, a digit of stop bits) follow the names to_string() gives.
template <typename E>
struct name_of {
    std::string_view name;
    E value;
    bool short_form = false;
};

constexpr name_of<parity> parity_names[] = {
    {"none", parity::none}, {"odd", parity::odd}, {"even", parity::even}, {"mark", parity::mark},
    {"space", parity::space}, {"N", parity::none, true}, {"O", parity::odd, true}, {"E", parity::even, true},
    {"M", parity::mark, true}, {"S", parity::space, true}};
constexpr name_of<stop_bits> stop_bits_names[] = {
    {"one", stop_bits::one}, {"two", stop_bits::two}, {"1", stop_bits::one, true}, {"2", stop_bits::two, true}};
constexpr name_of<flow_control> flow_control_names[] = {
    {"none", flow_control::none}, {"rts_cts", flow_control::rts_cts}, {"xon_xoff", flow_control::xon_xoff}};
constexpr name_of<serial_mode> serial_mode_names[] = {
    {"rs232", serial_mode::rs232}, {"rs422", serial_mode::rs422}, {"rs485", serial_mode::rs485}};
constexpr name_of<rts_level> rts_level_names[] = {{"high", rts_level::high}, {"low", rts_level::low}};

template <typename E, std::size_t N>
const char* name(const name_of<E> (&names)[N], E value) noexcept {
    for (const auto& n : names)
        if (n.value == value)
            return n.name.data();  // the literals are NUL-terminated
    return "invalid";
}

template <typename E, std::size_t N>
E parse(const name_of<E> (&names)[N], std::string_view what, std::string_view text) {
    std::string names_list;
    std::string short_list;
    for (const auto& n : names) {
        if (n.name == text)
            return n.value;
        auto& list = n.short_form ? short_list : names_list;
        list += (list.empty() ? "" : ", ") + std::string(n.name);
    }
    throw io::invalid_argument(std::string(what) + " '" + std::string(text) + "' is not valid; allowed " + names_list +
                               (short_list.empty() ? "" : " (or " + short_list + ")"));
}

}  // namespace

const char* to_string(parity p) noexcept {
    return name(parity_names, p);
}
const char* to_string(stop_bits s) noexcept {
    return name(stop_bits_names, s);
}
const char* to_string(flow_control f) noexcept {
    return name(flow_control_names, f);
}
const char* to_string(serial_mode m) noexcept {
    return name(serial_mode_names, m);
}
const char* to_string(rts_level l) noexcept {
    return name(rts_level_names, l);
}

parity parse_parity(std::string_view text) {
    return parse(parity_names, "parity", text);
}
stop_bits parse_stop_bits(std::string_view text) {
    return parse(stop_bits_names, "stop bits", text);
}
flow_control parse_flow_control(std::string_view text) {
    return parse(flow_control_names, "flow control", text);
}
serial_mode parse_serial_mode(std::string_view text) {
    return parse(serial_mode_names, "mode", text);
}
rts_level parse_rts_level(std::string_view text) {
    return parse(rts_level_names, "RTS level", text);
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
