// SPDX-License-Identifier: MIT
// iotool list, info and watch: which cards there are, what is on them, and
// which come and go.
#include "iotool.hpp"

#include "common/term.hpp"

#include <io/card_monitor.hpp>
#include <io/event_loop.hpp>

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace io::tools::iotool {

namespace {

std::string serial_names(const io::card_info& c) {
    std::string s;
    for (const auto& p : c.serial_ports) {
        const auto slash = p.path.rfind('/');
        s += (s.empty() ? "" : " ") + p.path.substr(slash == std::string::npos ? 0 : slash + 1);
    }
    return s.empty() ? "-" : s;
}

/// Prints rows as columns, the first row being the header.
void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows,
                 const std::vector<bool>& right_aligned = {}) {
    std::vector<std::size_t> width;
    for (const auto& r : rows)
        for (std::size_t i = 0; i < r.size(); ++i) {
            if (width.size() <= i)
                width.push_back(0);
            width[i] = std::max(width[i], r[i].size());
        }
    for (const auto& r : rows) {
        std::string line;
        for (std::size_t i = 0; i < r.size(); ++i) {
            const bool right = i < right_aligned.size() && right_aligned[i];
            const auto pad = std::string(width[i] - r[i].size(), ' ');
            if (i + 1 == r.size() && !right)
                line += r[i];
            else
                line += right ? pad + r[i] : r[i] + pad;
            if (i + 1 < r.size())
                line += "  ";
        }
        out << line << '\n';
    }
}

std::string ports_text(const io::card_info& c) {
    std::string s;
    for (const auto& p : c.ports)
        s += (s.empty() ? "" : " ") + p.name + ":" + std::to_string(p.width) + ":" + port_direction(p);
    return s;
}

}  // namespace

int run_list(const args& a) {
    po::options_description opts{"Options"};
    opts.add_options()("json", "print one JSON document (iotool(1), JSON OUTPUT)");
    const auto vm = parse("list", a, opts, {}, {},
                          {"list [--json]",
                           "Lists every card: iocard.ko cards (real and virtual), DIO cards of mainline\n"
                           "drivers and serial cards known to the hwdb, with model, bus location, label,\n"
                           "number of digital lines, change-of-state source and serial ports. Then the\n"
                           "Modbus modules configured in /etc/libio/modbus.d/*.conf ($LIBIO_CONFIG_DIR\n"
                           "instead of /etc/libio), each asked once: answering or not (and why), model.",
                           "  iotool list                      # a table\n"
                           "  iotool list --json | jq -r '.cards[].name'\n"
                           "  iotool list --json | jq -r '.modules[] | select(.present | not) | .name'\n"});
    if (!vm)
        return exit_ok;
    auto cards = io::enumerate();
    std::sort(cards.begin(), cards.end(), [](const auto& x, const auto& y) { return x.location < y.location; });
    const auto modules = list_modules();
    if (vm->count("json") != 0) {
        json_writer j{std::cout};
        j.begin_object().member("version", 1).key("cards").begin_array();
        for (const auto& c : cards)
            write_card(j, c);
        j.end_array().key("modules").begin_array();
        for (const auto& m : modules)
            write_module(j, m);
        j.end_array().end_object().end_document();
        return exit_ok;
    }
    if (cards.empty() && modules.empty()) {
        std::cerr << "no cards found\n";
        return exit_ok;
    }
    if (!cards.empty()) {
        std::vector<std::vector<std::string>> rows{{"NAME", "MODEL", "LOCATION", "LABEL", "LINES", "COS", "SERIAL"}};
        for (const auto& c : cards)
            rows.push_back({c.name, c.model, c.location, c.label, std::to_string(c.num_lines),
                            c.cos.empty() ? "-" : c.cos, serial_names(c)});
        print_table(std::cout, rows, {false, false, false, false, true, false, false});
    }
    if (!modules.empty()) {
        if (!cards.empty())
            std::cout << '\n';
        std::vector<std::vector<std::string>> rows{{"MODULE", "MODEL", "STATE", "LINES", "POLL", "LOCATION"}};
        for (const auto& m : modules)
            rows.push_back({m.card.name, m.card.model.empty() ? "?" : m.card.model,
                            m.answering ? "answering" : "not answering",
                            m.card.num_lines == 0 ? "-" : std::to_string(m.card.num_lines),
                            std::to_string(m.poll.count()) + "ms", m.card.location});
        print_table(std::cout, rows, {false, false, false, true, true, false});
        for (const auto& m : modules)
            if (!m.answering)
                std::cout << m.card.name << ": " << m.error << '\n';
    }
    return exit_ok;
}

int run_info(const args& a) {
    po::options_description opts{"Options"};
    opts.add_options()("json", "print one JSON document (iotool(1), JSON OUTPUT)");
    po::options_description hidden;
    hidden.add_options()("card", po::value<std::string>()->required(), "card");
    po::positional_options_description pos;
    pos.add("card", 1);
    const auto vm = parse("info", a, opts, hidden, pos,
                          {"info [--json] CARD",
                           "Shows a card's identity, its digital lines (name, port, direction, whether in\n"
                           "use and by whom) and its serial ports with their current settings.",
                           "  iotool info iocard0\n"
                           "  iotool info dio120#0 --json\n"
                           "  iotool info /dev/ttyS4           # the card that has this serial port\n"});
    if (!vm)
        return exit_ok;
    if (is_modbus_module((*vm)["card"].as<std::string>()))
        return modbus_info((*vm)["card"].as<std::string>(), vm->count("json") != 0);
    const auto card = find_card((*vm)["card"].as<std::string>());
    std::optional<io::chip> chip;
    if (!card.gpiochip.empty())
        chip.emplace(card.gpiochip);
    std::vector<io::line_info> lines;
    if (chip)
        for (unsigned o = 0; o < chip->num_lines(); ++o)
            lines.push_back(chip->info(o));
    struct serial_state {
        const io::serial_port_info* info;
        std::optional<io::serial_settings> settings;
        std::string error;
    };
    std::vector<serial_state> serial;
    for (const auto& s : card.serial_ports) {
        serial_state st{&s, {}, {}};
        st.settings = current_serial_settings(s.path, st.error);
        serial.push_back(std::move(st));
    }

    if (vm->count("json") != 0) {
        json_writer j{std::cout};
        j.begin_object().member("version", 1).key("card");
        write_card(j, card);
        j.key("lines").begin_array();
        for (const auto& l : lines) {
            const auto* p = io::port_of(card, l.offset);
            j.begin_object().member("offset", l.offset).member("name", l.name);
            j.key("port");
            if (p != nullptr)
                j.value(p->name);
            else
                j.value(nullptr);
            j.member("direction", io::to_string(l.dir))
                .member("used", l.used)
                .member("consumer", l.consumer)
                .member("edges", io::to_string(l.edges))
                .member("active_low", l.active_low)
                .end_object();
        }
        j.end_array().key("serial_ports").begin_array();
        for (const auto& s : serial) {
            j.begin_object().member("path", s.info->path).member("index", s.info->index).member("modes", s.info->modes);
            j.key("settings");
            if (s.settings)
                write_serial_settings(j, *s.settings);
            else
                j.value(nullptr);
            j.key("error");
            if (s.error.empty())
                j.value(nullptr);
            else
                j.value(s.error);
            j.end_object();
        }
        j.end_array().end_object().end_document();
        return exit_ok;
    }

    auto& out = std::cout;
    out << card.name << ": " << card.model << " (" << card.vendor << ")\n"
        << "  location  " << card.location << "\n"
        << "  label     " << card.label << "\n"
        << "  driver    " << card.driver << "\n";
    if (chip) {
        out << "  gpiochip  " << card.gpiochip << ", " << lines.size() << " lines, change of state: "
            << (card.cos.empty() ? "unknown" : card.cos == "hw" ? "hw (interrupt)" : card.cos == "scan" ? "scan (sampled)" : card.cos)
            << "\n";
        if (!card.ports.empty())
            out << "  ports     " << ports_text(card) << "\n";
        out << "\n";
        std::vector<std::vector<std::string>> rows{{"LINE", "NAME", "PORT", "DIRECTION", "USED", "CONSUMER"}};
        for (const auto& l : lines) {
            const auto* p = io::port_of(card, l.offset);
            std::string dir{io::to_string(l.dir)};
            if (l.dir == io::direction::input && l.edges != io::edge::none)
                dir += " (" + std::string(io::to_string(l.edges)) + " edges)";
            if (l.active_low)
                dir += " active-low";
            rows.push_back({std::to_string(l.offset), l.name.empty() ? "-" : l.name, p != nullptr ? p->name : "-", dir,
                            l.used ? "used" : "-", l.consumer.empty() ? "-" : l.consumer});
        }
        print_table(out, rows, {true});
    }
    if (!serial.empty()) {
        if (chip)
            out << "\n";
        out << "  serial ports\n";
        std::vector<std::vector<std::string>> rows{{"PORT", "INDEX", "MODES", "SETTINGS"}};
        for (const auto& s : serial)
            rows.push_back({s.info->path, std::to_string(s.info->index), s.info->modes,
                            s.settings ? io::to_string(*s.settings) : "(" + s.error + ")"});
        std::ostringstream t;
        print_table(t, rows, {false, true});
        std::istringstream in{t.str()};
        for (std::string line; std::getline(in, line);)
            out << "  " << line << '\n';
    }
    return exit_ok;
}

int run_watch(const args& a) {
    po::options_description opts{"Options"};
    opts.add_options()                                                                  //
        ("format", po::value<std::string>()->default_value("text"), "text or json (JSON lines)")  //
        ("json", "same as --format json")                                                 //
        ("count", po::value<unsigned>(), "exit after N cards or modules arrived or left")            //
        ("timeout", po::value<std::string>(), "exit after this long (5, 1.5s, 500ms)");
    const auto vm = parse("watch", a, opts, {}, {},
                          {"watch [--format text|json] [--count N] [--timeout T]",
                           "Shows the cards present, then every card that arrives or leaves (hotplug,\n"
                           "driver bind/unbind, virtual cards created or deleted) until interrupted.\n"
                           "Configured Modbus modules are shown present or absent at the start, then\n"
                           "removed when a poll gets no valid answer and added when one answers again.\n"
                           "With --count, ends after N changes; with --count and --timeout, fewer\n"
                           "changes than N before the timeout exit with status 1.",
                           "  iotool watch\n"
                           "  iotool watch --json --count 1 --timeout 30   # wait for one card to come or go\n"});
    if (!vm)
        return exit_ok;
    const auto stream = parse_stream_options("watch", *vm);
    const auto [json, counting, count, timeout] = stream;

    signal_fd signals{SIGINT, SIGTERM};
    io::card_monitor monitor;
    io::event_loop loop;
    unsigned changes_seen = 0;
    bool started = false;
    // One line (or JSON line) per card or module; a change (added, removed)
    // counts toward --count. Returns whether to go on.
    const auto emit = [&](const char* what, const io::card_info& c, const std::string& error) {
        if (json) {
            json_writer j{std::cout};
            j.begin_object().member("event", what).key("card");
            write_card(j, c);
            if (!error.empty())
                j.member("error", error);
            j.end_object().end_document();
        } else {
            std::cout << std::left << std::setw(8) << what << "  " << c.name << "  " << (c.model.empty() ? "?" : c.model)
                      << "  " << c.location << (c.gpiochip.empty() ? "" : "  " + c.gpiochip);
            for (const auto& s : c.serial_ports)
                std::cout << "  " << s.path;
            if (!error.empty())
                std::cout << "  (" << error << ")";
            std::cout << std::endl;
        }
        const bool change = std::string_view(what) == "added" || std::string_view(what) == "removed";
        if (started && change && counting && ++changes_seen >= count) {
            loop.stop();
            return false;
        }
        return true;
    };
    for (const auto& c : monitor.cards())
        emit("present", c, {});
    module_watch modules{loop, emit};
    started = true;
    if (json) {
        json_writer j{std::cout};
        j.begin_object().member("event", "ready").end_object().end_document();
    } else if (is_terminal(2)) {
        std::cerr << "watching for cards and modules; Ctrl-C ends\n";
    }

    if (counting && count == 0)
        return exit_ok;
    auto on_cards = io::on_card_events(loop, monitor, [&](std::span<const io::card_event> changes, std::error_code ec) {
        if (ec)
            throw std::system_error(ec, "read udev events");
        for (const auto& e : changes)
            if (!emit(e.change == io::card_event::kind::added ? "added" : "removed", e.card, {}))
                return;
    });
    const stream_stops stops{loop, signals, stream};
    loop.run();
    if (stops.timed_out() && counting && changes_seen < count) {
        std::cerr << "iotool: watch: " << changes_seen << " of " << count << " changes before the timeout\n";
        return exit_failure;
    }
    return exit_ok;
}

}  // namespace io::tools::iotool
