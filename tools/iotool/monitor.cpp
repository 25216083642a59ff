// SPDX-License-Identifier: MIT
// iotool monitor: edge events of input lines, with the kernel's timestamps
// and sequence numbers, and the events the kernel had to drop.
#include "iotool.hpp"

#include "common/term.hpp"

#include <io/event_loop.hpp>
#include <io/line_request.hpp>

#include <span>
#include <cstdio>
#include <iostream>
#include <map>

namespace io::tools::iotool {

std::string format_timestamp(std::uint64_t ns) {
    char ts[48];
    std::snprintf(ts, sizeof ts, "%llu.%09llu", static_cast<unsigned long long>(ns / 1'000'000'000ULL),
                  static_cast<unsigned long long>(ns % 1'000'000'000ULL));
    return ts;
}

void print_edge(const io::edge_event& e, const std::string& name, bool json) {
    if (json) {
        json_writer j{std::cout};
        j.begin_object()
            .member("event", "edge")
            .member("line", name)
            .member("offset", e.line)
            .member("edge", io::to_string(e.kind))
            .member("timestamp_ns", e.timestamp_ns)
            .member("seqno", e.seqno)
            .member("line_seqno", e.line_seqno)
            .end_object()
            .end_document();
    } else {
        std::cout << format_timestamp(e.timestamp_ns) << "  " << name << "  " << io::to_string(e.kind) << "  #"
                  << e.seqno << '\n';
    }
}

int run_monitor(const args& a) {
    po::options_description opts{"Options"};
    opts.add_options()                                                                                 //
        ("edges", po::value<std::string>()->default_value("both"), "rising, falling or both")             //
        ("count", po::value<unsigned>(), "exit after N edge events")                                      //
        ("timeout", po::value<std::string>(), "exit after this long (5, 1.5s, 500ms)")                     //
        ("format", po::value<std::string>()->default_value("text"), "text or json (JSON lines)")         //
        ("json", "same as --format json")                                                                  //
        ("poll", po::value<unsigned>()->default_value(10), "Modbus modules: poll period in ms (a configured module: its poll)")            //
        ("buffer", po::value<unsigned>(), "kernel event queue size per request, in events (default: the kernel's, 16 per line)");
    po::options_description hidden;
    hidden.add_options()("card", po::value<std::string>()->required(), "card")(
        "line", po::value<std::vector<std::string>>(), "lines");
    po::positional_options_description pos;
    pos.add("card", 1).add("line", -1);
    const auto vm = parse(
        "monitor", a, opts, hidden, pos,
        {"monitor [options] CARD [LINE...]",
         "Prints the edge events of input lines (all inputs of the card when no LINE is given)\n"
         "as the kernel timestamps them (CLOCK_MONOTONIC, the interrupt's or the change-of-\n"
         "state scan's time) with their sequence numbers, until interrupted, N events or the\n"
         "timeout. Changes that became no event (too fast for the card or the kernel, or\n"
         "a full queue) are reported as 'lost'. With --count and --timeout, fewer than N events before the timeout exit\n"
         "with status 1.",
         "  iotool monitor cos32#0 IN0 IN1\n"
         "  iotool monitor iocard0 --edges rising --count 10\n"
         "  iotool monitor iocard0 B0 --count 1 --timeout 5s && echo pressed\n"
         "  iotool monitor iocard0 --format json | jq .\n"
         "  iotool monitor 'modbus-tcp://rack3?unit=1&model=430' --poll 20\n"
         "      # a Modbus module is polled: timestamps are when the poll completed, and\n"
         "      # 'gone'/'back' lines show it stop and start answering\n"});
    if (!vm)
        return exit_ok;
    const auto edges_text = (*vm)["edges"].as<std::string>();
    io::edge edges = io::edge::both;
    if (edges_text == "rising")
        edges = io::edge::rising;
    else if (edges_text == "falling")
        edges = io::edge::falling;
    else if (edges_text != "both")
        usage_failure("monitor: --edges must be rising, falling or both, not '" + edges_text + "'");
    const auto stream = parse_stream_options("monitor", *vm);
    const auto [json, counting, count, timeout] = stream;
    if (vm->count("buffer") != 0 && (*vm)["buffer"].as<unsigned>() == 0)
        usage_failure("monitor: --buffer must be at least 1");

    if (is_modbus_module((*vm)["card"].as<std::string>())) {
        std::optional<std::chrono::milliseconds> poll;
        if (!(*vm)["poll"].defaulted()) {
            if ((*vm)["poll"].as<unsigned>() == 0)
                usage_failure("monitor: --poll must be at least 1 (ms)");
            poll = std::chrono::milliseconds((*vm)["poll"].as<unsigned>());
        }
        std::vector<std::string> lines;
        if (vm->count("line") != 0)
            lines = (*vm)["line"].as<std::vector<std::string>>();
        return modbus_monitor((*vm)["card"].as<std::string>(), lines, stream, poll, edges);
    }
    const auto card = find_digital_card((*vm)["card"].as<std::string>());
    io::chip chip{card.gpiochip};
    std::vector<unsigned> offsets;
    if (vm->count("line") != 0) {
        for (const auto& token : (*vm)["line"].as<std::vector<std::string>>()) {
            const auto o = find_line(chip, card, token);
            if (!can_input(card, o))
                usage_failure("monitor: line " + line_name(chip, o) + " of card " + card.name +
                              " is an output only; its inputs are " + input_ranges(chip, card));
            if (chip.info(o).dir == io::direction::output)
                usage_failure("monitor: line " + line_name(chip, o) + " of card " + card.name +
                              " is driven as an output now; watching it would switch its port to input");
            offsets.push_back(o);
        }
    } else {
        for (unsigned o = 0; o < chip.num_lines(); ++o)
            if (can_input(card, o) && chip.info(o).dir == io::direction::input)
                offsets.push_back(o);
        if (offsets.empty())
            usage_failure("monitor: card " + card.name + " has no lines that are inputs now; its input-capable lines are " +
                          input_ranges(chip, card));
    }
    std::map<unsigned, std::string> names;
    for (const auto o : offsets)
        names[o] = line_name(chip, o);

    signal_fd signals{SIGINT, SIGTERM};
    // The kernel takes at most 64 lines per request.
    std::vector<io::line_request> requests;
    for (std::size_t first = 0; first < offsets.size(); first += 64) {
        auto b = chip.prepare_request();
        b.consumer("iotool-monitor");
        if (vm->count("buffer") != 0)
            b.event_buffer_size((*vm)["buffer"].as<unsigned>());
        for (std::size_t i = first; i < offsets.size() && i < first + 64; ++i)
            b.add(offsets[i], io::line_config::input(edges));
        requests.push_back(b.make());
    }

    if (json) {
        json_writer j{std::cout};
        j.begin_object().member("event", "ready").member("card", card.name).member("edges", edges_text).key("lines").begin_array();
        for (const auto o : offsets)
            j.value(names[o]);
        j.end_array().end_object().end_document();
    } else if (is_terminal(2)) {
        std::cerr << "monitoring " << offsets.size() << " line(s) of " << card.name << " for " << edges_text
                  << " edges; Ctrl-C ends" << std::endl;
    }

    io::event_loop loop;
    std::uint64_t seen = 0;
    std::uint64_t lost_total = 0;
    std::vector<io::registration> watches;
    std::vector<std::uint64_t> lost_before(requests.size(), 0);
    for (std::size_t r = 0; r < requests.size(); ++r) {
        auto& req = requests[r];
        watches.push_back(io::on_edge_events(loop, req, [&, r](std::span<const io::edge_event> events, std::error_code ec) {
            if (ec)
                throw std::system_error(ec, "read edge events of " + card.name);
            if (const auto now = req.lost_events(); now > lost_before[r]) {
                const auto lost = now - lost_before[r];
                lost_before[r] = now;
                lost_total += lost;
                if (json) {
                    json_writer j{std::cout};
                    j.begin_object().member("event", "lost").member("count", lost).member("total", lost_total).end_object().end_document();
                } else {
                    std::cout << "lost " << lost << " event(s): changes that came faster than the card or the "
                                 "kernel delivers them, or a full queue ("
                              << lost_total << " lost in all; --buffer makes the queue longer)" << std::endl;
                }
            } else if (now < lost_before[r]) {
                // Events of two lines the kernel queued in the other order
                // than it numbered them: the later one read first counted
                // the other as lost until it came (libio's lost_events()).
                const auto late = lost_before[r] - now;
                lost_before[r] = now;
                lost_total -= late;
                if (json) {
                    json_writer j{std::cout};
                    j.begin_object().member("event", "late").member("count", late).member("total", lost_total).end_object().end_document();
                } else {
                    std::cout << late << " event(s) counted as lost came late, out of order (" << lost_total
                              << " lost in all)" << std::endl;
                }
            }
            for (const auto& e : events) {
                print_edge(e, names[e.line], json);
                ++seen;
                if (counting && seen >= count) {
                    loop.stop();
                    break;
                }
            }
            std::cout.flush();
        }));
    }
    const stream_stops stops{loop, signals, stream};
    if (!counting || count > 0)
        loop.run();
    if (!json && is_terminal(2))
        std::cerr << seen << " event(s), " << lost_total << " lost\n";
    if (stops.timed_out() && counting && seen < count) {
        std::cerr << "iotool: monitor: " << seen << " of " << count << " events before the timeout\n";
        return exit_failure;
    }
    return exit_ok;
}

}  // namespace io::tools::iotool
