// SPDX-License-Identifier: MIT
// get, set, port, info and monitor on a Modbus I/O module named by its URI
// (modbus-tcp://HOST?unit=1&model=410, modbus-rtu:DEVICE?unit=247&model=430)
// or by its name in libio's configuration (modbus.d/*.conf); the modules of
// list and watch; modbus scan.
#include "iotool.hpp"

#include "common/term.hpp"

#include <io/error.hpp>
#include <io/modbus.hpp>
#include <io/modbus_config.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <system_error>

namespace io::tools::iotool {

namespace {

/// The offset of a line given by name (DI3) or offset (3).
unsigned module_line(const io::modbus_module& m, const std::string& token) {
    unsigned offset = 0;
    const auto* end = token.data() + token.size();
    const auto [p, ec] = std::from_chars(token.data(), end, offset);
    try {
        if (!token.empty() && ec == std::errc{} && p == end) {
            (void)m.line_name(offset);  // refuses an offset beyond the module's lines
            return offset;
        }
        return m.find_line(token);
    } catch (const io::invalid_argument& e) {
        not_found(e.what());
    }
}

bool is_input(const io::modbus_module& m, unsigned offset) {
    return offset < m.model().inputs;
}

std::string format_value(std::uint64_t value, unsigned width, const std::string& format) {
    if (format == "dec")
        return std::to_string(value);
    if (format == "bin") {
        std::string bits = "0b";
        for (unsigned i = width; i-- > 0;)
            bits += ((value >> i) & 1U) != 0 ? '1' : '0';
        return bits;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%0*llx", static_cast<int>((width + 3) / 4), static_cast<unsigned long long>(value));
    return buf;
}

}  // namespace

bool is_modbus_uri(std::string_view key) {
    return key.starts_with("modbus-");
}

bool is_modbus_module(std::string_view key) {
    if (is_modbus_uri(key))
        return true;
    try {
        const auto config = io::load_modbus_config();
        return std::any_of(config.begin(), config.end(), [&](const auto& m) { return m.name == key; });
    } catch (const std::exception&) {
        // A broken module configuration does not stand in the way of a
        // card; for a key that is no card it is the answer.
        const auto config_error = std::current_exception();
        try {
            (void)find_card(key);
            return false;
        } catch (const tool_error&) {
            std::rethrow_exception(config_error);
        }
    }
}

io::modbus_module open_module(const std::string& key, std::optional<std::chrono::milliseconds>* poll) {
    if (is_modbus_uri(key))
        return io::modbus_module(key);
    io::modbus_site site(io::load_modbus_config());
    const auto i = site.find(key);
    if (!i)
        not_found("no Modbus module '" + key + "' in " + (io::config_dir() / "modbus.d").string());
    if (poll != nullptr)
        *poll = site.config(*i).poll;
    return std::move(site.open(*i));  // the module keeps its bus
}

int modbus_get(const std::string& uri, const std::vector<std::string>& tokens, bool json) {
    auto m = open_module(uri);
    std::vector<unsigned> offsets;
    for (const auto& t : tokens)
        offsets.push_back(module_line(m, t));
    std::vector<bool> values;
    for (const auto o : offsets)
        values.push_back(m.get(o));
    if (json) {
        json_writer j{std::cout};
        j.begin_object().member("card", m.info().name).key("lines").begin_array();
        for (std::size_t i = 0; i < offsets.size(); ++i)
            j.begin_object()
                .member("name", m.line_name(offsets[i]))
                .member("offset", offsets[i])
                .member("value", values[i] ? 1U : 0U)
                .end_object();
        j.end_array().end_object().end_document();
    } else {
        for (std::size_t i = 0; i < offsets.size(); ++i)
            std::cout << (i == 0 ? "" : " ") << m.line_name(offsets[i]) << '=' << (values[i] ? 1 : 0);
        std::cout << '\n';
    }
    return exit_ok;
}

int modbus_set(const std::string& uri, const std::vector<std::pair<std::string, bool>>& wanted) {
    auto m = open_module(uri);
    std::vector<std::pair<unsigned, bool>> writes;
    for (const auto& [token, level] : wanted) {
        const auto o = module_line(m, token);
        if (is_input(m, o))
            usage_failure("set: line " + m.line_name(o) + " of " + m.info().name + " is an input; its outputs are DO0..DO" +
                          std::to_string(m.model().outputs == 0 ? 0 : m.model().outputs - 1) +
                          (m.model().outputs == 0 ? " (none: the module has no outputs)" : ""));
        writes.emplace_back(o, level);
    }
    for (const auto& [o, level] : writes)  // one request (function 05) per line, in the order given
        m.set(o, level);
    return exit_ok;
}

int modbus_port(const std::string& uri, const std::string& port, const std::optional<std::string>& value,
                const std::string& format, bool json) {
    auto m = open_module(uri);
    const io::port_layout* layout = nullptr;
    for (const auto& p : m.info().ports)
        if (p.name == port)
            layout = &p;
    if (layout == nullptr) {
        std::string ports;
        for (const auto& p : m.info().ports)
            ports += (ports.empty() ? "" : ", ") + p.name;
        not_found("port: " + m.info().name + " has no port '" + port + "'; its ports are " + ports);
    }
    const unsigned width = layout->width;
    if (value) {
        if (layout->input)
            usage_failure("port: port " + port + " of " + m.info().name + " is an input port; write DO");
        const std::uint64_t mask = width >= 64 ? ~0ULL : (1ULL << width) - 1;
        m.write_port(port, parse_uint(*value, "port " + port + " (" + std::to_string(width) + " bits)", mask));
        return exit_ok;
    }
    const auto v = m.read_port(port);
    if (json) {
        json_writer j{std::cout};
        j.begin_object()
            .member("card", m.info().name)
            .member("port", port)
            .member("width", width)
            .member("value", v)
            .end_object()
            .end_document();
    } else {
        std::cout << format_value(v, width, format) << '\n';
    }
    return exit_ok;
}

int modbus_info(const std::string& uri, bool json) {
    auto m = open_module(uri);
    const bool present = [&] {
        std::error_code ec;
        (void)m.get(0, ec);
        return !ec;
    }();
    const auto& c = m.info();
    if (json) {
        json_writer j{std::cout};
        j.begin_object().member("version", 1).key("card");
        write_card(j, c);
        j.member("present", present).key("lines").begin_array();
        for (unsigned o = 0; o < c.num_lines; ++o)
            j.begin_object()
                .member("offset", o)
                .member("name", m.line_name(o))
                .member("port", is_input(m, o) ? "DI" : "DO")
                .member("direction", is_input(m, o) ? "input" : "output")
                .end_object();
        j.end_array().end_object().end_document();
        return exit_ok;
    }
    std::cout << c.name << "  " << m.model().description << "\n";
    if (c.name != c.location)
        std::cout << "  location " << c.location << "\n";
    std::cout << "  unit " << m.unit() << ", " << (present ? "answering" : "not answering") << "\n"
              << "  function codes " << m.model().function_codes << "\n";
    for (const auto& p : c.ports)
        std::cout << "  port " << p.name << ": " << p.name << "0.." << p.name << p.width - 1 << " ("
                  << (p.input ? "inputs" : "outputs") << ")\n";
    return exit_ok;
}

int modbus_monitor(const std::string& uri, const std::vector<std::string>& tokens, const stream_options& stream,
                   std::optional<std::chrono::milliseconds> given_period, io::edge edges) {
    std::optional<std::chrono::milliseconds> configured_period;
    auto m = open_module(uri, &configured_period);
    const auto period = given_period.value_or(configured_period.value_or(default_poll));
    std::vector<bool> watched(m.model().inputs, tokens.empty());
    for (const auto& t : tokens) {
        const auto o = module_line(m, t);
        if (!is_input(m, o))
            usage_failure("monitor: line " + m.line_name(o) + " of " + m.info().name + " is an output");
        watched[o] = true;
    }
    if (m.model().inputs == 0)
        usage_failure("monitor: " + m.info().name + " has no inputs");
    const auto [json, counting, count, timeout] = stream;
    signal_fd signals{SIGINT, SIGTERM};
    if (json) {
        json_writer j{std::cout};
        j.begin_object().member("event", "ready").member("card", m.info().name).member("edges", io::to_string(edges));
        j.member("poll_ms", static_cast<std::uint64_t>(period.count())).key("lines").begin_array();
        for (unsigned o = 0; o < watched.size(); ++o)
            if (watched[o])
                j.value(m.line_name(o));
        j.end_array().end_object().end_document();
    } else if (is_terminal(2)) {
        std::cerr << "polling " << m.info().name << " every " << period.count() << " ms; Ctrl-C ends" << std::endl;
    }
    io::event_loop loop;
    std::uint64_t seen = 0;
    const auto reg = io::on_modbus_events(loop, m, [&](std::span<const io::modbus_event> events, std::error_code ec) {
        if (ec)
            throw std::system_error(ec, "events of " + m.info().name);
        for (const auto& e : events) {
            if (e.what == io::modbus_event::kind::edge) {
                if (!watched[e.line] || (edges != io::edge::both && edges != e.change))
                    continue;
                print_edge({e.line, e.change, e.timestamp_ns, e.seqno, e.line_seqno}, m.line_name(e.line), json);
                if (counting && ++seen >= count) {
                    loop.stop();
                    break;
                }
            } else {
                const bool gone = e.what == io::modbus_event::kind::gone;
                if (json) {
                    json_writer j{std::cout};
                    j.begin_object().member("event", gone ? "gone" : "back").member("timestamp_ns", e.timestamp_ns);
                    if (gone)
                        j.member("error", e.error.message());
                    j.member("seqno", e.seqno).end_object().end_document();
                } else {
                    std::cout << format_timestamp(e.timestamp_ns) << "  " << (gone ? "gone: " + e.error.message() : "back")
                              << "  #" << e.seqno << '\n';
                }
            }
        }
        std::cout.flush();
    });
    m.start_polling(period);
    const stream_stops stops{loop, signals, stream};
    if (!counting || count > 0)
        loop.run();
    if (stops.timed_out() && counting && seen < count) {
        std::cerr << "iotool: monitor: " << seen << " of " << count << " events before the timeout\n";
        return exit_failure;
    }
    return exit_ok;
}

std::vector<listed_module> list_modules() {
    io::modbus_site site(io::load_modbus_config());
    std::vector<listed_module> out;
    for (std::size_t i = 0; i < site.size(); ++i) {
        listed_module l;
        const auto& c = site.config(i);
        l.poll = c.poll;
        l.config = c.file + ":" + std::to_string(c.line);
        if (auto* m = site.try_open(i)) {
            std::error_code ec;
            (void)m->get(0, ec);
            l.answering = !ec;
            if (ec)
                l.error = ec.message();
        } else {
            l.error = site.error(i);
        }
        l.card = site.info(i);
        out.push_back(std::move(l));
    }
    return out;
}

void write_module(json_writer& j, const listed_module& m) {
    j.begin_object();
    write_card_members(j, m.card);
    j.member("state", m.answering ? "answering" : "not answering").member("present", m.answering).key("error");
    if (m.error.empty())
        j.value(nullptr);
    else
        j.value(m.error);
    j.member("poll_ms", static_cast<std::uint64_t>(m.poll.count())).member("config", m.config).end_object();
}

module_watch::module_watch(io::event_loop& loop, report_fn report)
    : loop_{loop}, report_{std::move(report)}, site_{io::load_modbus_config()} {
    errors_.resize(site_.size());
    shown_.resize(site_.size());
    events_.resize(site_.size());
    retries_.resize(site_.size());
    for (std::size_t i = 0; i < site_.size(); ++i) {
        shown_[i] = answering(i);
        report_(shown_[i] ? "present" : "absent", site_.info(i), errors_[i]);
        if (site_.module(i) != nullptr)
            start(i);
        else
            retry(i);
    }
}

module_watch::~module_watch() = default;

bool module_watch::answering(std::size_t i) {
    auto* m = site_.try_open(i);
    if (m == nullptr) {
        errors_[i] = site_.error(i);
        return false;
    }
    std::error_code ec;
    (void)m->get(0, ec);
    errors_[i] = ec ? ec.message() : std::string{};
    return !ec;
}

bool module_watch::show(std::size_t i, bool present, const std::string& error) {
    if (shown_[i] == present)
        return true;
    shown_[i] = present;
    return report_(present ? "added" : "removed", site_.info(i), error);
}

// An open module is polled by the library: its gone and back events are its
// removal and return. Its first poll gives no event when it answers, so a
// module shown absent is also checked every second for an answered poll.
void module_watch::start(std::size_t i) {
    auto& m = *site_.module(i);
    events_[i] = io::on_modbus_events(loop_, m, [this, i](std::span<const io::modbus_event> events, std::error_code ec) {
        if (ec)
            throw std::system_error(ec, "events of " + site_.config(i).name);
        for (const auto& e : events) {
            if (e.what == io::modbus_event::kind::edge)
                continue;
            if (!show(i, e.what == io::modbus_event::kind::back, e.error ? e.error.message() : std::string{}))
                return;
        }
    });
    m.start_polling(site_.config(i).poll);
    if (!shown_[i])
        retries_[i] = loop_.call_every(std::chrono::seconds(1), [this, i, &m] {
            if (shown_[i])
                retries_[i].reset();
            else if (m.polls() > 0 && m.present())
                show(i, true, {});
        });
}

// A module that cannot be opened yet (its serial device absent, or its model
// to be read from it) is tried again every second, or every poll period when
// that is longer.
void module_watch::retry(std::size_t i) {
    const auto period = std::max<std::chrono::steady_clock::duration>(site_.config(i).poll, std::chrono::seconds(1));
    retries_[i] = loop_.call_every(period, [this, i] {
        if (site_.try_open(i) == nullptr)
            return;
        retries_[i].reset();
        start(i);
    });
}

int run_modbus(const args& a) {
    po::options_description opts{"Options"};
    opts.add_options()                                                          //
        ("first", po::value<unsigned>()->default_value(1), "first unit to try")  //
        ("last", po::value<unsigned>()->default_value(247), "last unit to try")  //
        ("json", "print one JSON document (iotool(1), JSON OUTPUT)");
    po::options_description hidden;
    hidden.add_options()("action", po::value<std::string>()->required(), "action")(
        "bus", po::value<std::string>()->required(), "bus");
    po::positional_options_description pos;
    pos.add("action", 1).add("bus", 1);
    const auto vm = parse("modbus", a, opts, hidden, pos,
                          {"modbus scan [options] BUS",
                           "Finds the units on a Modbus bus that answer: each unit from --first to --last\n"
                           "is sent one request (read discrete input 0) without retries; a reply or an\n"
                           "exception reply counts. An absent unit costs the bus's timeout, so give a\n"
                           "short one in the URI. Prints the units found, one a line; on a terminal, a\n"
                           "progress bar on stderr shows the unit being asked.",
                           "  iotool modbus scan 'modbus-rtu:/dev/serial/by-card/pci:0000:03:00.0/port1?baud=9600&timeout=50'\n"
                           "  iotool modbus scan 'modbus-tcp://gateway?timeout=200' --last 16 --json\n"});
    if (!vm)
        return exit_ok;
    const auto action = (*vm)["action"].as<std::string>();
    if (action != "scan")
        usage_failure("modbus: unknown action '" + action + "'; allowed: scan");
    io::modbus_bus bus((*vm)["bus"].as<std::string>());
    const auto first = (*vm)["first"].as<unsigned>();
    const auto last = (*vm)["last"].as<unsigned>();
    std::vector<unsigned> units;
    {
        progress_bar bar{std::cerr, is_terminal(2)};
        units = bus.scan(first, last, [&](unsigned unit, std::size_t found) {
            bar.update(unit - first, last - first + 1,
                       "unit " + std::to_string(unit) + ", " + std::to_string(found) + " found");
        });
    }
    if (vm->count("json") != 0) {
        json_writer j{std::cout};
        j.begin_object().member("bus", io::to_string(bus.address())).key("units").begin_array();
        for (const auto u : units)
            j.value(u);
        j.end_array().end_object().end_document();
    } else {
        for (const auto u : units)
            std::cout << u << '\n';
    }
    return exit_ok;
}

}  // namespace io::tools::iotool
