// SPDX-License-Identifier: MIT
#include "iotool.hpp"

#include "common/term.hpp"

#include <io/chip.hpp>
#include <io/error.hpp>

#include <functional>
#include <iostream>
#include <sstream>

namespace io::tools::iotool {

std::optional<po::variables_map> parse(const std::string& command, const args& a, po::options_description options,
                                       const po::options_description& hidden,
                                       const po::positional_options_description& positional, const help_text& help) {
    options.add_options()("help,h", "show this help and examples");
    po::options_description all;
    all.add(options).add(hidden);
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(a).options(all).positional(positional).run(), vm);
        if (vm.count("help") != 0) {
            std::cout << "Usage: iotool " << help.usage << "\n\n"
                      << help.description << "\n\n"
                      << options << "\nExamples:\n"
                      << help.examples << "\nExit status: 0 ok, 1 failure found, 2 usage, 3 not found, "
                      << "4 permission, 5 I/O or device error (iotool(1)).\n";
            return std::nullopt;
        }
        po::notify(vm);
    } catch (const po::error& e) {
        usage_failure(command + ": " + e.what() + "\nUsage: iotool " + help.usage + "\nSee 'iotool " + command +
                      " --help'.");
    }
    return vm;
}

io::card_info find_card(std::string_view key) {
    const auto cards = io::enumerate();
    try {
        return io::find_card(key, cards);
    } catch (const io::ambiguous_card& e) {
        usage_failure(e.what());
    } catch (const io::invalid_argument& e) {
        not_found(e.what());
    }
}

io::card_info find_digital_card(std::string_view key) {
    auto card = find_card(key);
    if (card.gpiochip.empty())
        not_found("card " + card.name + " (" + card.model + ") has no digital lines; it has serial ports only");
    return card;
}

namespace {

std::string ranges(const io::chip& chip, const std::function<bool(unsigned)>& keep) {
    std::vector<std::string> out;
    const unsigned n = chip.num_lines();
    unsigned i = 0;
    while (i < n) {
        if (!keep(i)) {
            ++i;
            continue;
        }
        const auto first = line_name(chip, i);
        const auto split = io::split_line_name(first);
        unsigned j = i + 1;
        std::string last = first;
        while (split && j < n && keep(j)) {
            const auto next = line_name(chip, j);
            const auto s2 = io::split_line_name(next);
            if (!s2 || s2->first != split->first || s2->second != split->second + (j - i))
                break;
            last = next;
            ++j;
        }
        out.push_back(j - i > 1 ? first + ".." + last : first);
        i = j;
    }
    std::string s;
    for (const auto& r : out)
        s += (s.empty() ? "" : ", ") + r;
    return s.empty() ? "none" : s;
}

}  // namespace

std::string line_name(const io::chip& chip, unsigned offset) {
    auto name = chip.info(offset).name;
    return name.empty() ? std::to_string(offset) : name;
}

std::string line_ranges(const io::chip& chip) {
    return ranges(chip, [](unsigned) { return true; });
}

std::string output_ranges(const io::chip& chip, const io::card_info& card) {
    return ranges(chip, [&](unsigned o) { return can_output(card, o); });
}

std::string input_ranges(const io::chip& chip, const io::card_info& card) {
    return ranges(chip, [&](unsigned o) { return can_input(card, o); });
}

unsigned find_line(const io::chip& chip, const io::card_info& card, std::string_view token) {
    if (auto offset = chip.find_line(token))
        return *offset;
    const bool numeric = !token.empty() && token.find_first_not_of("0123456789") == std::string_view::npos;
    if (numeric && token.size() < 6) {
        const auto offset = static_cast<unsigned>(std::stoul(std::string(token)));
        if (offset < chip.num_lines())
            return offset;
        not_found("no line " + std::string(token) + " on card " + card.name + ": offsets are 0.." +
                  std::to_string(chip.num_lines() - 1));
    }
    not_found("no line '" + std::string(token) + "' on card " + card.name + " (" + card.model +
              "); its lines are " + line_ranges(chip));
}

bool can_output(const io::card_info& card, unsigned offset) {
    const auto* p = io::port_of(card, offset);
    return p == nullptr || p->output;
}

bool can_input(const io::card_info& card, unsigned offset) {
    const auto* p = io::port_of(card, offset);
    return p == nullptr || p->input;
}

bool parse_level(std::string_view text, std::string_view what) {
    if (text == "1" || text == "high" || text == "on" || text == "true")
        return true;
    if (text == "0" || text == "low" || text == "off" || text == "false")
        return false;
    usage_failure(std::string(what) + ": '" + std::string(text) + "' is not a level; use 0 or 1 (low/high, off/on)");
}

const char* port_direction(const io::port_layout& p) {
    return p.input && p.output ? "io" : p.input ? "in" : "out";
}

void write_card(json_writer& j, const io::card_info& c) {
    j.begin_object();
    write_card_members(j, c);
    j.end_object();
}

void write_card_members(json_writer& j, const io::card_info& c) {
    j.member("name", c.name)
        .member("model", c.model)
        .member("vendor", c.vendor)
        .member("location", c.location)
        .member("label", c.label)
        .member("driver", c.driver)
        .member("index", c.index);
    j.key("gpiochip");
    if (c.gpiochip.empty())
        j.value(nullptr);
    else
        j.value(c.gpiochip);
    j.member("lines", c.num_lines);
    j.key("cos");
    if (c.cos.empty())
        j.value(nullptr);
    else
        j.value(c.cos);
    j.key("ports").begin_array();
    for (const auto& p : c.ports)
        j.begin_object().member("name", p.name).member("width", p.width).member("direction", port_direction(p)).end_object();
    j.end_array();
    j.key("serial_ports").begin_array();
    for (const auto& s : c.serial_ports)
        j.begin_object().member("path", s.path).member("index", s.index).member("modes", s.modes).end_object();
    j.end_array();
}

stream_options parse_stream_options(const std::string& command, const po::variables_map& vm) {
    stream_options o;
    const auto format = vm["format"].as<std::string>();
    if (format != "text" && format != "json")
        usage_failure(command + ": --format must be text or json, not '" + format + "'");
    o.json = format == "json" || vm.count("json") != 0;
    o.counting = vm.count("count") != 0;
    o.count = o.counting ? vm["count"].as<unsigned>() : 0;
    if (vm.count("timeout") != 0)
        o.timeout = parse_duration(vm["timeout"].as<std::string>(), "--timeout");
    return o;
}

stream_stops::stream_stops(io::event_loop& loop, signal_fd& signals, const stream_options& o)
    : on_signal_{loop.watch(signals.fd(), io::ready::in, [&loop, &signals](io::readiness) {
          (void)signals.take();
          loop.stop();
      })} {
    if (o.timeout)
        on_timeout_ = loop.call_after(std::chrono::duration_cast<io::event_loop::clock::duration>(*o.timeout), [this, &loop] {
            timed_out_ = true;
            loop.stop();
        });
}

}  // namespace io::tools::iotool
