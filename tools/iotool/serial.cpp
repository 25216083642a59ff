// SPDX-License-Identifier: MIT
// iotool serial PORT show|set|send|recv|term|loopback, on io::serial_port.
#include "iotool.hpp"

#include "common/term.hpp"

#include <io/error.hpp>
#include <io/serial_port.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <poll.h>
#include <sstream>
#include <termios.h>
#include <unistd.h>

namespace io::tools::iotool {

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// --- the port -------------------------------------------------------------

std::string all_serial_ports() {
    std::string s;
    for (const auto& c : io::enumerate())
        for (const auto& p : c.serial_ports)
            s += (s.empty() ? "" : ", ") + p.path;
    return s.empty() ? "none on known cards" : s;
}

/// PORT is a path (/dev/ttyS4, a /dev/serial/by-card name), a tty name
/// (ttyS4), or CARD[@N]: the card's serial port N (default 0).
std::string resolve_port(const std::string& key) {
    if (key.find('/') != std::string::npos) {
        if (!fs::exists(key))
            not_found("no serial port " + key + "; serial ports of known cards: " + all_serial_ports());
        return key;
    }
    if (fs::exists("/dev/" + key) && key.rfind("gpiochip", 0) != 0)
        return "/dev/" + key;
    std::string card_key = key;
    unsigned index = 0;
    if (const auto at = key.rfind('@'); at != std::string::npos) {
        card_key = key.substr(0, at);
        index = static_cast<unsigned>(parse_uint(key.substr(at + 1), "serial port index of " + card_key, 255));
    }
    const auto cards = io::enumerate();
    io::card_info card;
    try {
        card = io::find_card(card_key, cards);
    } catch (const io::invalid_argument&) {
        not_found("no serial port '" + key + "' (neither a /dev node nor a card); serial ports of known cards: " +
                  all_serial_ports());
    }
    try {
        return io::serial_port_path(card, index);
    } catch (const io::invalid_argument& e) {
        not_found(e.what());
    }
}

// --- settings options --------------------------------------------------------

template <typename E, std::size_t N>
E parse_enum(const std::string& text, const char* what, const std::pair<const char*, E> (&values)[N]) {
    std::string valid;
    for (const auto& [name, v] : values) {
        if (text == name)
            return v;
        if (std::strlen(name) > 1 || std::isdigit(static_cast<unsigned char>(name[0])) != 0)
            valid += (valid.empty() ? "" : ", ") + std::string(name);
    }
    usage_failure(std::string(what) + ": '" + text + "' is not one of " + valid);
}

// A setting by libio's parser of its name (serial_settings.hpp); a bad one
// is a usage error naming the option.
template <typename F>
auto parse_setting(const char* option, F&& parse) {
    try {
        return parse();
    } catch (const io::invalid_argument& e) {
        usage_failure(std::string(option) + ": " + e.what());
    }
}

constexpr std::pair<const char*, bool> switches[] = {{"on", true}, {"off", false}, {"1", true}, {"0", false}};

po::options_description settings_options() {
    po::options_description o{"Settings"};
    o.add_options()                                                                             //
        ("baud", po::value<std::string>(), "bits per second, any rate from 50 to 20000000")        //
        ("data-bits", po::value<std::string>(), "5, 6, 7 or 8")                                    //
        ("parity", po::value<std::string>(), "none, odd, even, mark or space")                    //
        ("stop-bits", po::value<std::string>(), "1 or 2")                                          //
        ("flow", po::value<std::string>(), "none, rts_cts or xon_xoff")                           //
        ("mode", po::value<std::string>(), "rs232, rs422 or rs485 (needs driver support)")        //
        ("rts-on-send", po::value<std::string>(), "rs485: RTS level while sending, high or low")  //
        ("delay-before", po::value<std::string>(), "rs485: ms from RTS on to the first bit, 0..100")  //
        ("delay-after", po::value<std::string>(), "rs485: ms from the last bit to RTS off, 0..100")   //
        ("rx-during-tx", po::value<std::string>(), "rs485: hear own echo, on or off")             //
        ("termination", po::value<std::string>(), "rs422/rs485: bus termination, on or off");
    return o;
}

/// "9600", "7E2", "8N1", "rs485", "rts_cts": the short forms of `serial set`.
void apply_shorthand(io::serial_settings& s, const std::string& token) {
    if (!token.empty() && token.find_first_not_of("0123456789") == std::string::npos) {
        s.set_baud(static_cast<std::uint32_t>(parse_uint(token, "baud", UINT32_MAX)));
        return;
    }
    if (token.size() == 3 && token[0] >= '5' && token[0] <= '8' && (token[2] == '1' || token[2] == '2')) {
        s.set_data_bits(static_cast<unsigned>(token[0] - '0'));
        const std::string letter(1, static_cast<char>(std::toupper(static_cast<unsigned char>(token[1]))));
        s.set_parity(parse_setting("parity letter", [&] { return io::parse_parity(letter); }));
        s.set_stop_bits(token[2] == '2' ? io::stop_bits::two : io::stop_bits::one);
        return;
    }
    try {
        s.set_mode(io::parse_serial_mode(token));
        return;
    } catch (const io::invalid_argument&) {
    }
    try {
        s.set_flow_control(io::parse_flow_control(token));
        return;
    } catch (const io::invalid_argument&) {
    }
    usage_failure("serial set: '" + token +
                  "' is not a setting; give a baud rate (9600), a frame (8N1, 7E2), a mode (rs232, rs422, rs485) "
                  "or a flow control (none, rts_cts, xon_xoff), or use the options");
}

void apply_options(io::serial_settings& s, const po::variables_map& vm) {
    const auto has = [&vm](const char* k) { return vm.count(k) != 0; };
    const auto str = [&vm](const char* k) { return vm[k].as<std::string>(); };
    if (has("baud"))
        s.set_baud(static_cast<std::uint32_t>(parse_uint(str("baud"), "--baud", UINT32_MAX)));
    if (has("data-bits"))
        s.set_data_bits(static_cast<unsigned>(parse_uint(str("data-bits"), "--data-bits", 64)));
    if (has("parity"))
        s.set_parity(parse_setting("--parity", [&] { return io::parse_parity(str("parity")); }));
    if (has("stop-bits"))
        s.set_stop_bits(parse_setting("--stop-bits", [&] { return io::parse_stop_bits(str("stop-bits")); }));
    if (has("flow"))
        s.set_flow_control(parse_setting("--flow", [&] { return io::parse_flow_control(str("flow")); }));
    if (has("mode"))
        s.set_mode(parse_setting("--mode", [&] { return io::parse_serial_mode(str("mode")); }));
    if (has("rts-on-send"))
        s.set_rts_on_send(parse_setting("--rts-on-send", [&] { return io::parse_rts_level(str("rts-on-send")); }));
    if (has("delay-before"))
        s.set_delay_before_send(std::chrono::milliseconds{parse_uint(str("delay-before"), "--delay-before", 1000)});
    if (has("delay-after"))
        s.set_delay_after_send(std::chrono::milliseconds{parse_uint(str("delay-after"), "--delay-after", 1000)});
    if (has("rx-during-tx"))
        s.set_receive_during_send(parse_enum(str("rx-during-tx"), "--rx-during-tx", switches));
    if (has("termination"))
        s.set_termination(parse_enum(str("termination"), "--termination", switches));
    s.validate();
}

/// The port's current settings with the options applied, opened for a session.
/// Bad option values are usage errors before the port is looked up.
io::serial_port open_session(const std::string& key, const po::variables_map& vm) {
    io::serial_settings probe;
    apply_options(probe, vm);
    const auto path = resolve_port(key);
    io::serial_settings s;
    std::string error;
    if (auto now = current_serial_settings(path, error))
        s = *now;
    apply_options(s, vm);
    io::serial_port port{path, s};
    if (vm.count("low-latency") != 0)
        port.set_low_latency(true);
    return port;
}

std::string describe(const io::serial_port& port) {
    return port.path().string() + " at " + io::to_string(port.settings());
}

// --- bytes ---------------------------------------------------------------------

/// TEXT with C escapes: \r \n \t \\ \0 \xNN.
std::string unescape(const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '\\' || i + 1 == text.size()) {
            out += text[i];
            continue;
        }
        const char c = text[++i];
        switch (c) {
        case 'r': out += '\r'; break;
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case '0': out += '\0'; break;
        case '\\': out += '\\'; break;
        case 'x':
            if (i + 2 < text.size() + 0 && std::isxdigit(static_cast<unsigned char>(text[i + 1])) != 0 &&
                std::isxdigit(static_cast<unsigned char>(text[i + 2])) != 0) {
                out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
                i += 2;
                break;
            }
            usage_failure("serial send: '\\x' needs two hex digits");
        default: out += '\\'; out += c;
        }
    }
    return out;
}

std::string from_hex(const std::string& text) {
    std::string digits;
    for (const char c : text)
        if (std::isspace(static_cast<unsigned char>(c)) == 0 && c != ':')
            digits += c;
    if (digits.size() % 2 != 0 || digits.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
        usage_failure("serial send --hex: '" + text + "' is not hex bytes (for example '01 03 00 00 00 0a')");
    std::string out;
    for (std::size_t i = 0; i < digits.size(); i += 2)
        out += static_cast<char>(std::stoi(digits.substr(i, 2), nullptr, 16));
    return out;
}

void hex_dump(std::ostream& out, const std::string& data, std::size_t base) {
    for (std::size_t i = 0; i < data.size(); i += 16) {
        char line[96];
        int n = std::snprintf(line, sizeof line, "%08zx ", base + i);
        std::string ascii;
        for (std::size_t k = 0; k < 16; ++k) {
            if (i + k < data.size()) {
                const auto b = static_cast<unsigned char>(data[i + k]);
                n += std::snprintf(line + n, sizeof line - static_cast<std::size_t>(n), " %02x", b);
                ascii += (b >= 0x20 && b < 0x7f) ? static_cast<char>(b) : '.';
            } else {
                n += std::snprintf(line + n, sizeof line - static_cast<std::size_t>(n), "   ");
            }
        }
        out << line << "  |" << ascii << "|\n";
    }
}

std::span<std::byte> bytes(std::string& s) {
    return {reinterpret_cast<std::byte*>(s.data()), s.size()};
}
std::span<const std::byte> bytes(const std::string& s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

template <typename D>
std::chrono::microseconds micros(D d) {
    return std::chrono::duration_cast<std::chrono::microseconds>(d);
}

void write_modem(json_writer& j, const io::modem_lines& m) {
    j.begin_object()
        .member("dtr", m.dtr)
        .member("rts", m.rts)
        .member("cts", m.cts)
        .member("dsr", m.dsr)
        .member("dcd", m.dcd)
        .member("ri", m.ri)
        .end_object();
}

void write_counters(json_writer& j, const io::serial_counters& c) {
    j.begin_object()
        .member("rx", c.rx)
        .member("tx", c.tx)
        .member("overrun", c.overrun)
        .member("parity", c.parity)
        .member("framing", c.framing)
        .member("breaks", c.breaks)
        .end_object();
}

// --- actions -------------------------------------------------------------------

const help_text show_help{
    "serial PORT show [--json]     (show is the default action)",
    "Shows a serial port as it is now, without changing anything: line settings, mode,\n"
    "low-latency flag, modem lines and the driver's counters.",
    "  iotool serial ttyS4\n"
    "  iotool serial /dev/ttyUSB0 show --json\n"};

const help_text set_help{
    "serial PORT set [SETTING...] [options]",
    "Changes the port's settings and keeps them after iotool exits (as stty does): only\n"
    "speed, framing, flow control and mode change. SETTING is a short form: a baud rate\n"
    "(9600), a frame (8N1, 7E2, 8M1), a mode (rs485) or a flow control (rts_cts). The\n"
    "driver's read-back is printed; a rate or mode the hardware cannot do is refused.",
    "  iotool serial ttyS4 set 9600 7E1\n"
    "  iotool serial ttyS5 set --baud 250000 --parity even --stop-bits 2\n"
    "  iotool serial ttyS6 set rs485 --rts-on-send high --delay-after 1\n"};

const help_text send_help{
    "serial PORT send [options] [TEXT...]",
    "Sends TEXT (C escapes \\r \\n \\t \\xNN), --hex bytes or a --file, then waits until\n"
    "the UART has sent everything. The port's current settings are used; the settings\n"
    "options change them for this command only.",
    "  iotool serial ttyS4 send 'hello\\r\\n'\n"
    "  iotool serial ttyS4 send --hex '01 03 00 00 00 0a c5 cd' --baud 19200\n"
    "  iotool serial ttyUSB0 send --file firmware.bin\n"};

const help_text recv_help{
    "serial PORT recv [options]",
    "Prints what arrives (raw, or as a hex dump) until --count bytes came, a --line ended,\n"
    "--idle passed without a byte once data came, or --timeout passed. Exit status 1 when\n"
    "nothing (or less than --count) arrived.",
    "  iotool serial ttyS4 recv --timeout 5\n"
    "  iotool serial ttyS4 recv --count 8 --hex --idle 4ms     # one Modbus frame\n"
    "  iotool serial ttyUSB0 recv --line\n"};

const help_text term_help{
    "serial PORT term [options]",
    "An interactive terminal: keys go to the port, the port's data to the screen. Ctrl-]\n"
    "ends it. With stdin not a terminal, sends stdin, prints what comes back until --linger\n"
    "passes after the end of stdin.",
    "  iotool serial ttyS4 term --baud 9600\n"
    "  printf 'AT\\r' | iotool serial ttyUSB0 term --linger 1s\n"};

const help_text loopback_help{
    "serial PORT loopback [options]",
    "The wired-loopback test (TX wired to RX, or a far end echoing): sends --bytes of a\n"
    "pseudo-random pattern in blocks, reads each back and compares, and prints bytes sent\n"
    "and received, mismatches, bytes missing, the driver's error counters and throughput.\n"
    "Exit status 1 on any difference.",
    "  iotool serial ttyS4 loopback\n"
    "  iotool serial ttyUSB0 loopback --bytes 65536 --baud 3000000 --json\n"};

void session_options(po::options_description& o) {
    o.add_options()("low-latency", "set low-latency mode for this command (FTDI: latency timer 1 ms)");
    o.add(settings_options());
}

int serial_show(const std::string& key, const args& a) {
    po::options_description opts{"Options"};
    opts.add_options()("json", "print one JSON document (iotool(1), JSON OUTPUT)");
    const auto vm = parse("serial show", a, opts, {}, {}, show_help);
    if (!vm)
        return exit_ok;
    const auto path = resolve_port(key);
    const auto st = io::inspect_serial(path);
    if (vm->count("json") != 0) {
        json_writer j{std::cout};
        j.begin_object().member("port", path).member("driver", st.driver).key("settings");
        if (st.settings)
            write_serial_settings(j, *st.settings);
        else
            j.value(nullptr);
        j.key("settings_error");
        if (st.settings)
            j.value(nullptr);
        else
            j.value(st.settings_error);
        j.key("low_latency");
        if (st.low_latency)
            j.value(*st.low_latency);
        else
            j.value(nullptr);
        j.key("latency_timer_ms");
        if (st.latency_timer >= 0)
            j.value(st.latency_timer);
        else
            j.value(nullptr);
        j.key("modem");
        if (st.modem)
            write_modem(j, *st.modem);
        else
            j.value(nullptr);
        j.key("counters");
        if (st.counters)
            write_counters(j, *st.counters);
        else
            j.value(nullptr);
        j.end_object().end_document();
        return exit_ok;
    }
    auto& o = std::cout;
    o << path << " (driver " << st.driver << ")\n";
    o << "  settings     " << (st.settings ? io::to_string(*st.settings) : "unknown: " + st.settings_error) << '\n';
    if (st.settings)
        o << "  mode         " << io::to_string(st.settings->mode()) << ", flow control "
          << io::to_string(st.settings->flow_control()) << '\n';
    if (st.low_latency)
        o << "  low latency  " << (*st.low_latency ? "on" : "off")
          << (st.latency_timer >= 0 ? ", latency timer " + std::to_string(st.latency_timer) + " ms" : "") << '\n';
    if (st.modem) {
        const auto& m = *st.modem;
        const auto on = [](bool b) { return b ? "on " : "off"; };
        o << "  modem lines  DTR " << on(m.dtr) << "  RTS " << on(m.rts) << "  CTS " << on(m.cts) << "  DSR "
          << on(m.dsr) << "  DCD " << on(m.dcd) << "  RI " << on(m.ri) << '\n';
    }
    if (st.counters) {
        const auto& c = *st.counters;
        o << "  counters     rx " << c.rx << ", tx " << c.tx << ", overrun " << c.overrun << ", parity " << c.parity
          << ", framing " << c.framing << ", breaks " << c.breaks << '\n';
    }
    return exit_ok;
}

int serial_set(const std::string& key, const args& a) {
    po::options_description opts{"Options"};
    opts.add_options()("json", "print the settings as JSON (iotool(1), JSON OUTPUT)");
    opts.add(settings_options());
    po::options_description hidden;
    hidden.add_options()("setting", po::value<std::vector<std::string>>(), "short forms");
    po::positional_options_description pos;
    pos.add("setting", -1);
    const auto vm = parse("serial set", a, opts, hidden, pos, set_help);
    if (!vm)
        return exit_ok;
    const auto settings_given = [&vm](io::serial_settings& s) {
        if (vm->count("setting") != 0)
            for (const auto& t : (*vm)["setting"].as<std::vector<std::string>>())
                apply_shorthand(s, t);
        apply_options(s, *vm);
    };
    io::serial_settings probe;
    settings_given(probe);  // bad values are usage errors before the port is looked up
    const auto path = resolve_port(key);
    io::serial_settings s;
    std::string error;
    if (auto now = current_serial_settings(path, error))
        s = *now;
    settings_given(s);
    io::serial_port port{path, s};
    const auto got = port.settings();
    port.keep_settings_on_close();
    port.close();
    if (vm->count("json") != 0) {
        json_writer j{std::cout};
        j.begin_object().member("port", path).key("settings");
        write_serial_settings(j, got);
        j.end_object().end_document();
    } else {
        std::cout << path << ": " << io::to_string(got) << '\n';
    }
    return exit_ok;
}

int serial_send(const std::string& key, const args& a) {
    po::options_description opts{"Options"};
    opts.add_options()                                                          //
        ("hex", po::value<std::string>(), "send these bytes, in hex")              //
        ("file", po::value<std::string>(), "send this file's bytes (- is stdin)")  //
        ("eol", po::value<std::string>()->default_value("none"), "append none, cr, lf or crlf")  //
        ("timeout", po::value<std::string>()->default_value("10s"), "longest time to send and drain");
    session_options(opts);
    po::options_description hidden;
    hidden.add_options()("text", po::value<std::vector<std::string>>(), "text");
    po::positional_options_description pos;
    pos.add("text", -1);
    const auto vm = parse("serial send", a, opts, hidden, pos, send_help);
    if (!vm)
        return exit_ok;
    const int sources = static_cast<int>(vm->count("hex") + vm->count("file") + vm->count("text"));
    if (sources != 1)
        usage_failure("serial send: give exactly one of TEXT, --hex or --file");
    std::string data;
    if (vm->count("text") != 0) {
        std::string text;
        for (const auto& t : (*vm)["text"].as<std::vector<std::string>>())
            text += (text.empty() ? "" : " ") + t;
        data = unescape(text);
    } else if (vm->count("hex") != 0) {
        data = from_hex((*vm)["hex"].as<std::string>());
    } else {
        const auto file = (*vm)["file"].as<std::string>();
        if (file == "-") {
            data.assign(std::istreambuf_iterator<char>(std::cin), {});
        } else {
            std::ifstream in{file, std::ios::binary};
            if (!in)
                throw std::system_error(errno, std::system_category(), "open " + file);
            data.assign(std::istreambuf_iterator<char>(in), {});
        }
    }
    const auto eol = (*vm)["eol"].as<std::string>();
    constexpr std::pair<const char*, const char*> eols[] = {{"none", ""}, {"cr", "\r"}, {"lf", "\n"}, {"crlf", "\r\n"}};
    data += parse_enum(eol, "--eol", eols);
    const auto timeout = parse_duration((*vm)["timeout"].as<std::string>(), "--timeout");
    auto port = open_session(key, *vm);
    const auto n = port.write(bytes(data), micros(timeout));
    if (n < data.size())
        throw tool_error(exit_io, "serial send: " + std::to_string(n) + " of " + std::to_string(data.size()) +
                                      " bytes sent to " + describe(port) + " before the timeout (flow control holding it?)");
    port.drain();
    if (is_terminal(2))
        std::cerr << "sent " << n << " bytes to " << describe(port) << '\n';
    return exit_ok;
}

int serial_recv(const std::string& key, const args& a) {
    po::options_description opts{"Options"};
    opts.add_options()                                                                          //
        ("count", po::value<std::size_t>(), "stop after this many bytes")                          //
        ("timeout", po::value<std::string>()->default_value("5s"), "stop after this long in all")  //
        ("idle", po::value<std::string>(), "stop when no byte came for this long (once data came)")  //
        ("line", "stop after the first line feed")                                                 //
        ("hex", "print a hex dump instead of the raw bytes");
    session_options(opts);
    const auto vm = parse("serial recv", a, opts, {}, {}, recv_help);
    if (!vm)
        return exit_ok;
    const auto total = parse_duration((*vm)["timeout"].as<std::string>(), "--timeout");
    std::optional<std::chrono::nanoseconds> idle;
    if (vm->count("idle") != 0)
        idle = parse_duration((*vm)["idle"].as<std::string>(), "--idle");
    const std::size_t count = vm->count("count") != 0 ? (*vm)["count"].as<std::size_t>() : 0;  // 0: no limit
    if (vm->count("count") != 0 && count == 0)
        usage_failure("serial recv: --count must be at least 1");
    const bool hex = vm->count("hex") != 0;
    const bool line = vm->count("line") != 0;
    auto port = open_session(key, *vm);
    if (is_terminal(2))
        std::cerr << "receiving on " << describe(port) << '\n';

    const auto deadline = std::chrono::steady_clock::now() + total;
    std::size_t received = 0;
    std::string pending_hex;
    std::string chunk(4096, '\0');
    for (;;) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline)
            break;
        auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now);
        if (idle && received > 0)
            wait = std::min(wait, *idle);
        std::size_t want = chunk.size();
        if (count != 0)
            want = std::min(want, count - received);
        const auto n = port.read_some(bytes(chunk).first(want), micros(wait) + 1us);
        if (n == 0) {
            if (idle && received > 0)
                break;
            continue;
        }
        std::string got = chunk.substr(0, n);
        bool stop = false;
        if (line) {
            if (const auto lf = got.find('\n'); lf != std::string::npos) {
                got.resize(lf + 1);
                stop = true;
            }
        }
        if (hex)
            hex_dump(std::cout, got, received);
        else
            std::cout.write(got.data(), static_cast<std::streamsize>(got.size()));
        std::cout.flush();
        received += got.size();
        if (stop || (count != 0 && received >= count))
            break;
    }
    if (is_terminal(2))
        std::cerr << "\nreceived " << received << " bytes\n";
    if (received == 0 || received < count) {
        std::cerr << "iotool: serial recv: " << received << (count != 0 ? " of " + std::to_string(count) : std::string{})
                  << " bytes received on " << port.path().string() << " before the timeout\n";
        return exit_failure;
    }
    return exit_ok;
}

/// Puts a terminal into raw mode for the life of the object.
class raw_terminal final {
public:
    explicit raw_terminal(int fd) : fd_{fd} {
        if (::tcgetattr(fd, &old_) != 0)
            return;
        termios raw = old_;
        ::cfmakeraw(&raw);
        active_ = ::tcsetattr(fd, TCSANOW, &raw) == 0;
    }
    ~raw_terminal() {
        if (active_)
            ::tcsetattr(fd_, TCSANOW, &old_);
    }
    raw_terminal(const raw_terminal&) = delete;
    raw_terminal& operator=(const raw_terminal&) = delete;

private:
    int fd_;
    termios old_{};
    bool active_ = false;
};

int serial_term(const std::string& key, const args& a) {
    po::options_description opts{"Options"};
    opts.add_options()("linger", po::value<std::string>()->default_value("500ms"),
                       "with stdin not a terminal: how long to print replies after its end");
    session_options(opts);
    const auto vm = parse("serial term", a, opts, {}, {}, term_help);
    if (!vm)
        return exit_ok;
    const auto linger = parse_duration((*vm)["linger"].as<std::string>(), "--linger");
    auto port = open_session(key, *vm);
    const bool interactive = is_terminal(0);
    signal_fd signals{SIGINT, SIGTERM, SIGHUP};
    std::optional<raw_terminal> raw;
    if (interactive) {
        std::cerr << "connected to " << describe(port) << "; Ctrl-] ends\r\n";
        raw.emplace(0);
    }
    bool stdin_open = true;
    std::optional<std::chrono::steady_clock::time_point> stop_at;
    std::string buf(4096, '\0');
    for (;;) {
        int wait_ms = -1;
        if (stop_at) {
            const auto left = *stop_at - std::chrono::steady_clock::now();
            if (left <= 0ns)
                break;
            wait_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(left).count()) + 1;
        }
        pollfd p[3] = {{port.fd(), POLLIN, 0}, {signals.fd(), POLLIN, 0}, {stdin_open ? 0 : -1, POLLIN, 0}};
        if (::poll(p, 3, wait_ms) < 0) {
            if (errno == EINTR)
                continue;
            throw std::system_error(errno, std::system_category(), "poll");
        }
        if ((p[1].revents & POLLIN) != 0) {
            (void)signals.take();
            break;
        }
        if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            const auto n = port.read_some(bytes(buf), 0us);
            (void)::write(1, buf.data(), n);
        }
        if ((p[2].revents & (POLLIN | POLLHUP)) != 0) {
            const auto n = ::read(0, buf.data(), buf.size());
            if (n <= 0) {
                stdin_open = false;
                stop_at = std::chrono::steady_clock::now() + linger;
                continue;
            }
            std::string data = buf.substr(0, static_cast<std::size_t>(n));
            if (interactive) {
                if (const auto end = data.find('\x1d'); end != std::string::npos) {
                    data.resize(end);
                    stdin_open = false;
                    stop_at = std::chrono::steady_clock::now();
                }
            }
            port.write(bytes(data), 5s);
        }
    }
    raw.reset();
    if (interactive)
        std::cerr << "\ndisconnected from " << port.path().string() << '\n';
    return exit_ok;
}

int serial_loopback(const std::string& key, const args& a) {
    po::options_description opts{"Options"};
    opts.add_options()                                                                           //
        ("bytes", po::value<std::size_t>()->default_value(4096), "bytes to send in all")           //
        ("block", po::value<std::size_t>()->default_value(256), "bytes per block sent and read back")  //
        ("timeout", po::value<std::string>()->default_value("2s"), "longest wait for a block to come back")  //
        ("seed", po::value<unsigned>()->default_value(1), "seed of the pseudo-random pattern")     //
        ("json", "print one JSON document (iotool(1), JSON OUTPUT)");
    session_options(opts);
    const auto vm = parse("serial loopback", a, opts, {}, {}, loopback_help);
    if (!vm)
        return exit_ok;
    const auto total = (*vm)["bytes"].as<std::size_t>();
    const auto block = (*vm)["block"].as<std::size_t>();
    if (total == 0 || block == 0)
        usage_failure("serial loopback: --bytes and --block must be at least 1");
    const auto timeout = parse_duration((*vm)["timeout"].as<std::string>(), "--timeout");
    const bool json = vm->count("json") != 0;
    auto port = open_session(key, *vm);
    const auto settings = port.settings();
    const auto mask = static_cast<unsigned char>((1U << settings.data_bits()) - 1U);

    std::uint32_t x = (*vm)["seed"].as<unsigned>();
    if (x == 0)
        x = 0x9e3779b9U;
    std::string pattern(total, '\0');
    for (auto& c : pattern) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c = static_cast<char>(x & mask);
    }
    port.flush(io::serial_queue::both);
    // Ptys have no error counters; the comparison of the data still counts.
    const auto counters = [&port]() -> io::serial_counters {
        try {
            return port.counters();
        } catch (const std::system_error&) {
            return {};
        }
    };
    const auto before = counters();
    progress_bar bar{std::cerr, !json && is_terminal(2)};
    std::size_t sent = 0, received = 0, mismatched = 0;
    std::string back(block, '\0');
    const auto t0 = std::chrono::steady_clock::now();
    while (sent < total) {
        bar.update(sent, total, "loopback on " + port.path().string());
        const auto n = std::min(block, total - sent);
        const auto chunk = pattern.substr(sent, n);
        const auto w = port.write(bytes(chunk), micros(timeout));
        sent += w;
        const auto r = port.read(bytes(back).first(w), {micros(timeout), 0us});
        for (std::size_t i = 0; i < r; ++i)
            if (back[i] != chunk[i])
                ++mismatched;
        received += r;
        if (w < n || r < w)
            break;  // the cable is not there: do not wait block after block
    }
    const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bar.finish();
    const auto after = counters();
    const auto missing = sent - received;
    const auto overrun = after.overrun - before.overrun;
    const auto parity = after.parity - before.parity;
    const auto framing = after.framing - before.framing;
    const bool pass = sent == total && received == sent && mismatched == 0 && overrun == 0 && parity == 0 && framing == 0;
    if (json) {
        json_writer j{std::cout};
        j.begin_object().member("port", port.path().string()).key("settings");
        write_serial_settings(j, settings);
        j.member("pass", pass)
            .member("bytes", total)
            .member("sent", sent)
            .member("received", received)
            .member("mismatched", mismatched)
            .member("missing", missing)
            .member("overrun", overrun)
            .member("parity_errors", parity)
            .member("framing_errors", framing)
            .member("seconds", seconds)
            .end_object()
            .end_document();
    } else {
        std::cout << "loopback on " << describe(port) << ": " << (pass ? "PASS" : "FAIL") << '\n'
                  << "  sent " << sent << " of " << total << " bytes, received " << received << ", mismatched "
                  << mismatched << ", missing " << missing << '\n'
                  << "  driver counters: overrun " << overrun << ", parity " << parity << ", framing " << framing << '\n';
        char rate[64];
        std::snprintf(rate, sizeof rate, "  %.0f bytes/s round trip (%.2f s)\n", seconds > 0 ? static_cast<double>(received) / seconds : 0.0, seconds);
        std::cout << rate;
        if (received == 0)
            std::cout << "  nothing came back: is TX wired to RX (or the far end echoing)?\n";
    }
    return pass ? exit_ok : exit_failure;
}

constexpr std::pair<const char*, int (*)(const std::string&, const args&)> actions[] = {
    {"show", serial_show}, {"set", serial_set},   {"send", serial_send},
    {"recv", serial_recv}, {"term", serial_term}, {"loopback", serial_loopback}};

void serial_usage(std::ostream& out) {
    out << "Usage: iotool serial PORT [ACTION] [options]\n\n"
           "PORT is a path (/dev/ttyS4, /dev/serial/by-card/...), a tty name (ttyS4), or\n"
           "CARD@N, serial port N of a card (ftdi-ft232@0).\n\n"
           "Actions:\n"
           "  show      the port as it is now: settings, modem lines, counters (default)\n"
           "  set       change its settings and keep them (speed, framing, flow, mode)\n"
           "  send      send text, hex bytes or a file\n"
           "  recv      print what arrives, with total and inter-byte timeouts\n"
           "  term      an interactive terminal (Ctrl-] ends)\n"
           "  loopback  the wired-loopback test: bytes sent, received, errors\n\n"
           "'iotool serial PORT ACTION --help' shows an action's options and examples.\n";
}

}  // namespace

std::optional<io::serial_settings> current_serial_settings(const std::string& path, std::string& error) {
    try {
        auto st = io::inspect_serial(path);
        if (!st.settings)
            error = st.settings_error;
        return st.settings;
    } catch (const std::system_error& e) {
        error = e.what();
        return std::nullopt;
    }
}

void write_serial_settings(json_writer& j, const io::serial_settings& s) {
    j.begin_object()
        .member("text", io::to_string(s))
        .member("baud", s.baud())
        .member("data_bits", s.data_bits())
        .member("parity", io::to_string(s.parity()))
        .member("stop_bits", s.stop_bits() == io::stop_bits::two ? 2 : 1)
        .member("flow_control", io::to_string(s.flow_control()))
        .member("mode", io::to_string(s.mode()));
    if (s.mode() == io::serial_mode::rs485)
        j.member("rts_on_send", io::to_string(s.rts_on_send()))
            .member("delay_before_send_ms", static_cast<std::int64_t>(s.delay_before_send().count()))
            .member("delay_after_send_ms", static_cast<std::int64_t>(s.delay_after_send().count()))
            .member("receive_during_send", s.receive_during_send());
    if (s.mode() != io::serial_mode::rs232)
        j.member("termination", s.termination());
    j.end_object();
}

int run_serial(const args& a) {
    if (a.empty()) {
        serial_usage(std::cerr);
        return exit_usage;
    }
    if (a[0] == "--help" || a[0] == "-h") {
        serial_usage(std::cout);
        return exit_ok;
    }
    // "iotool serial send --help": the help of an action asked without a port.
    for (const auto& [name, run] : actions)
        if (a[0] == name) {
            if (std::find(a.begin(), a.end(), "--help") != a.end() || std::find(a.begin(), a.end(), "-h") != a.end())
                return run("", {"--help"});
            usage_failure("serial: give the port first: iotool serial PORT " + std::string(name) +
                          " (see 'iotool serial --help')");
        }
    const auto& port = a[0];
    std::string action = "show";
    std::size_t first = 1;
    if (a.size() > 1 && !a[1].empty() && a[1][0] != '-') {
        action = a[1];
        first = 2;
    }
    for (const auto& [name, run] : actions)
        if (action == name)
            return run(port, args(a.begin() + static_cast<std::ptrdiff_t>(first), a.end()));
    usage_failure("serial: unknown action '" + action + "'; actions: show, set, send, recv, term, loopback");
}

}  // namespace io::tools::iotool
