// SPDX-License-Identifier: MIT
// iotool get, set and port: digital lines and ports, read and driven.
#include "iotool.hpp"

#include "common/term.hpp"

#include <io/error.hpp>
#include <io/line_request.hpp>

#include <cstdio>
#include <iostream>
#include <poll.h>

namespace io::tools::iotool {

namespace {

constexpr const char* consumer = "iotool";

/// Refuses lines that cannot be read as inputs without disturbing them.
void check_readable(const io::chip& chip, const io::card_info& card, unsigned offset, const char* command) {
    const auto name = line_name(chip, offset);
    if (!can_input(card, offset))
        usage_failure(std::string(command) + ": line " + name + " of card " + card.name +
                      " is an output only; its inputs are " + input_ranges(chip, card));
    if (chip.info(offset).dir == io::direction::output)
        usage_failure(std::string(command) + ": line " + name + " of card " + card.name +
                      " is driven as an output now; reading it as an input would switch its port to input. "
                      "'iotool info " + card.name + "' shows the directions");
}

void check_writable(const io::chip& chip, const io::card_info& card, unsigned offset, const char* command) {
    if (!can_output(card, offset))
        usage_failure(std::string(command) + ": line " + line_name(chip, offset) + " of card " + card.name +
                      " is an input only; its outputs are " + output_ranges(chip, card));
}

/// Waits for SIGINT or SIGTERM (blocked into fd) while holding lines.
void hold_until_signal(signal_fd& signals, const std::string& what) {
    std::cerr << "holding " << what << "; Ctrl-C or SIGTERM releases" << std::endl;
    pollfd p{signals.fd(), POLLIN, 0};
    while (::poll(&p, 1, -1) <= 0 || signals.take() == 0) {
    }
}

io::port find_port(const io::chip& chip, const io::card_info& card, const std::string& name) {
    try {
        return chip.find_port(name);
    } catch (const io::invalid_argument& e) {
        (void)card;
        not_found(e.what());
    }
}

}  // namespace

int run_get(const args& a) {
    po::options_description opts{"Options"};
    opts.add_options()("json", "print one JSON document (iotool(1), JSON OUTPUT)");
    po::options_description hidden;
    hidden.add_options()("card", po::value<std::string>()->required(), "card")(
        "line", po::value<std::vector<std::string>>()->required(), "lines");
    po::positional_options_description pos;
    pos.add("card", 1).add("line", -1);
    const auto vm = parse("get", a, opts, hidden, pos,
                          {"get [--json] CARD LINE...",
                           "Reads input lines (by name or offset) in one kernel call and prints NAME=VALUE\n"
                           "for each. Lines driven as outputs are refused rather than switched to input.",
                           "  iotool get iocard0 B0 B1 B2\n"
                           "  iotool get cos32#0 IN0 IN31 --json\n"
                           "  iotool get iocard0 8             # by offset\n"
                           "  iotool get 'modbus-tcp://rack3:502?unit=1&model=410' DI0 DI1\n"});
    if (!vm)
        return exit_ok;
    if (is_modbus_module((*vm)["card"].as<std::string>()))
        return modbus_get((*vm)["card"].as<std::string>(), (*vm)["line"].as<std::vector<std::string>>(),
                          vm->count("json") != 0);
    const auto card = find_digital_card((*vm)["card"].as<std::string>());
    io::chip chip{card.gpiochip};
    std::vector<unsigned> offsets;
    for (const auto& token : (*vm)["line"].as<std::vector<std::string>>()) {
        const auto o = find_line(chip, card, token);
        check_readable(chip, card, o, "get");
        offsets.push_back(o);
    }
    auto builder = chip.prepare_request();
    builder.consumer(consumer);
    for (const auto o : offsets)
        builder.add(o, io::line_config::input());
    auto request = builder.make();
    const auto bits = request.get_bits(offsets);
    if (vm->count("json") != 0) {
        json_writer j{std::cout};
        j.begin_object().member("card", card.name).key("lines").begin_array();
        for (std::size_t i = 0; i < offsets.size(); ++i)
            j.begin_object()
                .member("name", line_name(chip, offsets[i]))
                .member("offset", offsets[i])
                .member("value", static_cast<unsigned>((bits >> i) & 1U))
                .end_object();
        j.end_array().end_object().end_document();
    } else {
        for (std::size_t i = 0; i < offsets.size(); ++i)
            std::cout << (i == 0 ? "" : " ") << line_name(chip, offsets[i]) << '=' << ((bits >> i) & 1U);
        std::cout << '\n';
    }
    return exit_ok;
}

int run_set(const args& a) {
    po::options_description opts{"Options"};
    opts.add_options()("hold", "keep the lines requested (others cannot take them) until Ctrl-C or SIGTERM");
    po::options_description hidden;
    hidden.add_options()("card", po::value<std::string>()->required(), "card")(
        "assignment", po::value<std::vector<std::string>>()->required(), "LINE=VALUE");
    po::positional_options_description pos;
    pos.add("card", 1).add("assignment", -1);
    const auto vm = parse("set", a, opts, hidden, pos,
                          {"set [--hold] CARD LINE=VALUE...",
                           "Drives output lines (by name or offset) to 0 or 1 (also low/high, off/on) in\n"
                           "one request. Outputs keep their level when iotool exits; with --hold iotool\n"
                           "keeps the lines requested until interrupted. On 8255 cards a line's whole port\n"
                           "becomes an output.",
                           "  iotool set iocard0 A0=1 A1=0\n"
                           "  iotool set cos32#0 OUT3=high --hold     # until Ctrl-C\n"
                           "  iotool set 'modbus-rtu:/dev/ttyUSB0?unit=247&model=410' DO3=1\n"});
    if (!vm)
        return exit_ok;
    struct assignment {
        std::string line;
        bool level;
    };
    std::vector<assignment> wanted;
    for (const auto& text : (*vm)["assignment"].as<std::vector<std::string>>()) {
        const auto eq = text.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
            usage_failure("set: '" + text + "' is not LINE=VALUE (for example A0=1)");
        wanted.push_back({text.substr(0, eq), parse_level(text.substr(eq + 1), "set " + text.substr(0, eq))});
    }
    if (is_modbus_module((*vm)["card"].as<std::string>())) {
        if (vm->count("hold") != 0)
            usage_failure("set: --hold is for cards; a Modbus module's outputs keep their level without it");
        std::vector<std::pair<std::string, bool>> levels;
        for (const auto& w : wanted)
            levels.emplace_back(w.line, w.level);
        return modbus_set((*vm)["card"].as<std::string>(), levels);
    }
    const auto card = find_digital_card((*vm)["card"].as<std::string>());
    io::chip chip{card.gpiochip};
    auto builder = chip.prepare_request();
    builder.consumer(consumer);
    std::string what;
    for (const auto& w : wanted) {
        const auto o = find_line(chip, card, w.line);
        check_writable(chip, card, o, "set");
        builder.add(o, io::line_config::output(w.level));
        what += (what.empty() ? "" : " ") + line_name(chip, o) + "=" + (w.level ? "1" : "0");
    }
    std::optional<signal_fd> signals;
    if (vm->count("hold") != 0)
        signals.emplace(std::initializer_list<int>{SIGINT, SIGTERM});
    auto request = builder.make();
    if (signals)
        hold_until_signal(*signals, what + " on " + card.name);
    return exit_ok;
}

int run_port(const args& a) {
    po::options_description opts{"Options"};
    opts.add_options()                                                                        //
        ("format", po::value<std::string>()->default_value("hex"), "how a read value prints: hex, dec or bin")  //
        ("json", "print one JSON document (iotool(1), JSON OUTPUT)")                            //
        ("hold", "after a write, keep the port requested until Ctrl-C or SIGTERM");
    po::options_description hidden;
    hidden.add_options()("card", po::value<std::string>()->required(), "card")(
        "port", po::value<std::string>()->required(), "port")("value", po::value<std::string>(), "value");
    po::positional_options_description pos;
    pos.add("card", 1).add("port", 1).add("value", 1);
    const auto vm = parse("port", a, opts, hidden, pos,
                          {"port [options] CARD PORT [VALUE]",
                           "Reads a whole port as one integer, or writes VALUE (decimal, 0x hex, 0b binary)\n"
                           "to it, in one register access on iocard cards. Bit i is the line whose name\n"
                           "ends in the port's i-th lowest number (bit 0 of CH is CH4).",
                           "  iotool port iocard0 B               # prints 0x5a\n"
                           "  iotool port iocard0 A 0x5a\n"
                           "  iotool port cos32#0 OUT 0xffff0000\n"
                           "  iotool port iocard0 B --format bin --json\n"});
    if (!vm)
        return exit_ok;
    const auto format = (*vm)["format"].as<std::string>();
    if (format != "hex" && format != "dec" && format != "bin")
        usage_failure("port: --format must be hex, dec or bin, not '" + format + "'");
    if (is_modbus_module((*vm)["card"].as<std::string>())) {
        if (vm->count("hold") != 0)
            usage_failure("port: --hold is for cards; a Modbus module's outputs keep their level without it");
        std::optional<std::string> value;
        if (vm->count("value") != 0)
            value = (*vm)["value"].as<std::string>();
        return modbus_port((*vm)["card"].as<std::string>(), (*vm)["port"].as<std::string>(), value, format,
                           vm->count("json") != 0);
    }
    const auto card = find_digital_card((*vm)["card"].as<std::string>());
    io::chip chip{card.gpiochip};
    const auto port = find_port(chip, card, (*vm)["port"].as<std::string>());
    const auto width = static_cast<unsigned>(port.lines.size());
    const std::uint64_t mask = width >= 64 ? ~0ULL : (1ULL << width) - 1;
    auto builder = chip.prepare_request();
    builder.consumer(consumer);

    if (vm->count("value") != 0) {
        const auto value = parse_uint((*vm)["value"].as<std::string>(),
                                      "port " + port.name + " (" + std::to_string(width) + " bits)", mask);
        for (std::size_t i = 0; i < port.lines.size(); ++i) {
            check_writable(chip, card, port.lines[i], "port");
            builder.add(port.lines[i], io::line_config::output(((value >> i) & 1U) != 0));
        }
        std::optional<signal_fd> signals;
        if (vm->count("hold") != 0)
            signals.emplace(std::initializer_list<int>{SIGINT, SIGTERM});
        auto request = builder.make();
        request.write_port(port, value);
        if (signals)
            hold_until_signal(*signals, "port " + port.name + " of " + card.name);
        return exit_ok;
    }

    for (const auto o : port.lines)
        check_readable(chip, card, o, "port");
    for (const auto o : port.lines)
        builder.add(o, io::line_config::input());
    auto request = builder.make();
    const auto value = request.read_port(port);
    if (vm->count("json") != 0) {
        json_writer j{std::cout};
        j.begin_object()
            .member("card", card.name)
            .member("port", port.name)
            .member("width", width)
            .member("value", value)
            .end_object()
            .end_document();
        return exit_ok;
    }
    if (format == "dec") {
        std::cout << value << '\n';
    } else if (format == "bin") {
        std::string bits;
        for (unsigned i = width; i-- > 0;)
            bits += ((value >> i) & 1U) != 0 ? '1' : '0';
        std::cout << "0b" << bits << '\n';
    } else {
        char buf[32];
        std::snprintf(buf, sizeof buf, "0x%0*llx", static_cast<int>((width + 3) / 4),
                      static_cast<unsigned long long>(value));
        std::cout << buf << '\n';
    }
    return exit_ok;
}

}  // namespace io::tools::iotool
