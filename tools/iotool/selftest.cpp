// SPDX-License-Identifier: MIT
// iotool selftest and latency: a card's outputs wired back to its inputs (a
// technician's loopback cable, or sim_loopback on a virtual card), checked
// line by line and timed.
#include "iotool.hpp"

#include "common/term.hpp"

#include <io/error.hpp>
#include <io/line_request.hpp>
#include <io/rt_histogram.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <thread>

namespace io::tools::iotool {

namespace {

/// One direction of a loopback: the output port drives the input port, bit i to bit i.
struct phase {
    io::port out;
    io::port in;
};

io::port port_named(const io::chip& chip, const std::string& name) {
    try {
        return chip.find_port(name);
    } catch (const io::invalid_argument& e) {
        not_found(e.what());
    }
}

/// The loopback wiring: given pairs "OUT:IN", or the card's convention
/// (ports in layout order, taken two by two: an output-only port drives its
/// input-only partner, e.g. OUT -> IN; two bidirectional ports are tested
/// both ways, e.g. A -> B and B -> A, CL -> CH and CH -> CL, as iocard's
/// sim_loopback and the usual loopback cables wire 8255 cards).
std::vector<phase> plan(const io::chip& chip, const io::card_info& card, const std::vector<std::string>& pairs) {
    std::vector<phase> phases;
    if (!pairs.empty()) {
        for (const auto& p : pairs) {
            const auto colon = p.find(':');
            if (colon == std::string::npos)
                usage_failure("--pair '" + p + "' is not OUTPORT:INPORT (for example A:B)");
            phase ph{port_named(chip, p.substr(0, colon)), port_named(chip, p.substr(colon + 1))};
            if (ph.out.lines.size() != ph.in.lines.size())
                usage_failure("--pair " + p + ": the ports differ in width");
            phases.push_back(std::move(ph));
        }
        return phases;
    }
    if (card.ports.size() < 2 || card.ports.size() % 2 != 0)
        usage_failure("card " + card.name + " (" + card.model +
                      ") has no port layout that pairs up for a loopback; name the wiring with --pair OUT:IN");
    for (std::size_t i = 0; i + 1 < card.ports.size(); i += 2) {
        const auto& a = card.ports[i];
        const auto& b = card.ports[i + 1];
        if (a.width != b.width)
            usage_failure("card " + card.name + ": ports " + a.name + " and " + b.name +
                          " differ in width; name the wiring with --pair OUT:IN");
        if (a.output && b.input)
            phases.push_back({port_named(chip, a.name), port_named(chip, b.name)});
        if (b.output && a.input)
            phases.push_back({port_named(chip, b.name), port_named(chip, a.name)});
    }
    if (phases.empty())
        usage_failure("card " + card.name + " has no output port paired with an input port; use --pair OUT:IN");
    return phases;
}

std::uint64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

struct line_result {
    std::string out;
    std::string in;
    unsigned checks = 0;
    unsigned wrong = 0;
    unsigned seen_high = 0;  // reads of 1
    std::string fault() const {
        if (wrong == 0)
            return "";
        if (seen_high == 0)
            return "stuck at 0";
        if (seen_high == checks)
            return "stuck at 1";
        return "wrong in " + std::to_string(wrong) + " of " + std::to_string(checks) + " checks";
    }
};

std::vector<std::string> pairs_option(const po::variables_map& vm) {
    return vm.count("pair") != 0 ? vm["pair"].as<std::vector<std::string>>() : std::vector<std::string>{};
}

}  // namespace

int run_selftest(const args& a) {
    po::options_description opts{"Options"};
    opts.add_options()                                                                                    //
        ("pair", po::value<std::vector<std::string>>(), "OUT:IN, a port wired to another (repeat); default: the card's convention")  //
        ("settle", po::value<std::string>()->default_value("1ms"), "wait after each write before reading")  //
        ("json", "print one JSON document (iotool(1), JSON OUTPUT)");
    po::options_description hidden;
    hidden.add_options()("card", po::value<std::string>()->required(), "card");
    po::positional_options_description pos;
    pos.add("card", 1);
    const auto vm = parse(
        "selftest", a, opts, hidden, pos,
        {"selftest [options] CARD",
         "The technician's loopback test. With the card's outputs wired to its inputs, walks a\n"
         "one and then a zero through every output port and checks that exactly the matching\n"
         "input follows; prints pass or fail (stuck at 0, stuck at 1, or crosstalk) per line\n"
         "and exits with status 1 on any failure. Wiring by default: ports taken two by two in\n"
         "layout order, an output-only port to its input-only partner (OUT -> IN), two\n"
         "bidirectional ports both ways (A -> B, B -> A, CL -> CH, CH -> CL). Disconnect field\n"
         "wiring first: every output is driven. Outputs are left at 0.",
         "  iotool selftest iocard0\n"
         "  iotool selftest cos32#0 --json\n"
         "  iotool selftest iocard0 --pair A:B --pair CL:CH   # one direction only\n"});
    if (!vm)
        return exit_ok;
    const auto settle = parse_duration((*vm)["settle"].as<std::string>(), "--settle");
    const bool json = vm->count("json") != 0;
    const auto card = find_digital_card((*vm)["card"].as<std::string>());
    io::chip chip{card.gpiochip};
    const auto phases = plan(chip, card, pairs_option(*vm));

    std::size_t total_steps = 0;
    for (const auto& ph : phases)
        total_steps += 2 * ph.out.lines.size();
    std::size_t step = 0;
    progress_bar bar{std::cerr, !json && is_terminal(2)};
    std::vector<line_result> results;
    for (const auto& ph : phases) {
        const auto width = ph.out.lines.size();
        const std::uint64_t mask = width >= 64 ? ~0ULL : (1ULL << width) - 1;
        auto b = chip.prepare_request();
        b.consumer("iotool-selftest");
        b.add(ph.out, io::line_config::output(false));
        b.add(ph.in, io::line_config::input());
        auto req = b.make();
        const auto first = results.size();
        for (std::size_t i = 0; i < width; ++i)
            results.push_back({line_name(chip, ph.out.lines[i]), line_name(chip, ph.in.lines[i])});
        for (int walk = 0; walk < 2; ++walk) {
            for (std::size_t i = 0; i < width; ++i) {
                bar.update(step++, total_steps, ph.out.name + " -> " + ph.in.name + (walk == 0 ? " walking 1" : " walking 0"));
                const std::uint64_t want = walk == 0 ? (1ULL << i) : (mask & ~(1ULL << i));
                req.write_port(ph.out, want);
                std::this_thread::sleep_for(settle);
                const auto got = req.read_port(ph.in) & mask;
                // Compared through the XOR: GCC 12.2 at -O2 miscompiles the
                // per-bit form "high != want bit" in this loop (always counts highs).
                const std::uint64_t diff = got ^ want;
                for (std::size_t j = 0; j < width; ++j) {
                    auto& r = results[first + j];
                    ++r.checks;
                    const bool high = ((got >> j) & 1U) != 0;
                    r.seen_high += high ? 1U : 0U;
                    if (((diff >> j) & 1U) != 0)
                        ++r.wrong;
                }
            }
        }
        req.write_port(ph.out, 0);
    }
    bar.finish();

    const auto failed = static_cast<std::size_t>(
        std::count_if(results.begin(), results.end(), [](const auto& r) { return r.wrong != 0; }));
    if (json) {
        json_writer j{std::cout};
        j.begin_object()
            .member("card", card.name)
            .member("model", card.model)
            .member("pass", failed == 0)
            .member("tested", results.size())
            .member("failed", failed)
            .key("lines")
            .begin_array();
        for (const auto& r : results) {
            j.begin_object().member("output", r.out).member("input", r.in).member("pass", r.wrong == 0);
            j.key("fault");
            if (r.wrong == 0)
                j.value(nullptr);
            else
                j.value(r.fault());
            j.end_object();
        }
        j.end_array().end_object().end_document();
    } else {
        std::cout << "selftest of " << card.name << " (" << card.model << "), outputs wired to inputs:\n";
        for (const auto& r : results)
            std::cout << "  " << r.out << " -> " << r.in << std::string(r.out.size() + r.in.size() < 12 ? 12 - r.out.size() - r.in.size() : 1, ' ')
                      << (r.wrong == 0 ? "pass" : "FAIL  " + r.fault()) << '\n';
        if (failed == 0)
            std::cout << "PASS: all " << results.size() << " line pairs\n";
        else
            std::cout << "FAIL: " << failed << " of " << results.size() << " line pairs (is the loopback wired?)\n";
    }
    return failed == 0 ? exit_ok : exit_failure;
}

int run_latency(const args& a) {
    po::options_description opts{"Options"};
    opts.add_options()                                                                              //
        ("rounds,n", po::value<unsigned>()->default_value(1000), "round trips to time")                //
        ("output", po::value<std::string>(), "output line (default: the first output of the wiring)")  //
        ("input", po::value<std::string>(), "input line wired to it (default: its partner)")           //
        ("pair", po::value<std::vector<std::string>>(), "OUT:IN ports wired together, as for selftest") //
        ("timeout", po::value<std::string>()->default_value("1s"), "longest wait for one edge")        //
        ("json", "print one JSON document (iotool(1), JSON OUTPUT)");
    po::options_description hidden;
    hidden.add_options()("card", po::value<std::string>()->required(), "card");
    po::positional_options_description pos;
    pos.add("card", 1);
    const auto vm = parse(
        "latency", a, opts, hidden, pos,
        {"latency [options] CARD",
         "Toggles an output wired to an input N times and measures, for each round trip, the\n"
         "time from the write to the input's edge timestamp (taken by the kernel in the change-\n"
         "of-state interrupt or scan) and to iotool waking up with the event. Prints p50, p99,\n"
         "p99.9 and max (within 1.6%: io::rt::latency_histogram's buckets; min and max exact)\n"
         "and a histogram of the wake-up latency. On cards with COS 'scan' the scan period\n"
         "dominates. Exits with status 1 if an edge does not arrive in time.",
         "  iotool latency cos32#0\n"
         "  iotool latency iocard0 -n 10000 --output A0 --input B0\n"
         "  iotool latency cos32#0 --json | jq .wakeup_ns.p99\n"});
    if (!vm)
        return exit_ok;
    const auto rounds = (*vm)["rounds"].as<unsigned>();
    if (rounds == 0)
        usage_failure("latency: --rounds must be at least 1");
    const auto timeout = parse_duration((*vm)["timeout"].as<std::string>(), "--timeout");
    const bool json = vm->count("json") != 0;
    const auto card = find_digital_card((*vm)["card"].as<std::string>());
    io::chip chip{card.gpiochip};
    unsigned out = 0;
    unsigned in = 0;
    if (vm->count("output") != 0 || vm->count("input") != 0) {
        if (vm->count("output") == 0 || vm->count("input") == 0)
            usage_failure("latency: give both --output and --input, or neither");
        out = find_line(chip, card, (*vm)["output"].as<std::string>());
        in = find_line(chip, card, (*vm)["input"].as<std::string>());
        if (!can_output(card, out))
            usage_failure("latency: line " + line_name(chip, out) + " is an input only; outputs are " +
                          output_ranges(chip, card));
        if (!can_input(card, in))
            usage_failure("latency: line " + line_name(chip, in) + " is an output only; inputs are " +
                          input_ranges(chip, card));
    } else {
        const auto phases = plan(chip, card, pairs_option(*vm));
        out = phases.front().out.lines.front();
        in = phases.front().in.lines.front();
    }
    const auto out_name = line_name(chip, out);
    const auto in_name = line_name(chip, in);

    auto b = chip.prepare_request();
    b.consumer("iotool-latency");
    b.add(out, io::line_config::output(false));
    b.add(in, io::line_config::input(io::edge::both));
    auto req = b.make();
    // Start from a quiet input: the write of 0 may itself have caused an edge.
    std::array<io::edge_event, 16> events{};
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
    while (req.wait_edge_events(std::chrono::milliseconds{0}))
        (void)req.read_edge_events(events);

    io::rt::latency_histogram edge_hist;
    io::rt::latency_histogram wake_hist;
    progress_bar bar{std::cerr, !json && is_terminal(2)};
    bool level = false;
    constexpr unsigned warmup = 10;
    for (unsigned i = 0; i < rounds + warmup; ++i) {
        if (i % 64 == 0)
            bar.update(i, rounds + warmup, out_name + " -> " + in_name);
        level = !level;
        const auto t0 = now_ns();
        req.set(out, level);
        const auto want = level ? io::edge::rising : io::edge::falling;
        bool got = false;
        while (!got) {
            if (!req.wait_edge_events(timeout)) {
                bar.finish();
                std::cerr << "iotool: latency: no " << io::to_string(want) << " edge on " << in_name << " within "
                          << std::chrono::duration<double>(timeout).count() << " s after " << out_name << " went "
                          << (level ? "high" : "low") << ": is " << out_name << " wired to " << in_name
                          << " (loopback)?\n";
                req.set(out, false);
                return exit_failure;
            }
            const auto n = req.read_edge_events(events);
            const auto t1 = now_ns();
            for (std::size_t k = 0; k < n; ++k) {
                if (events[k].line == in && events[k].kind == want && !got) {
                    got = true;
                    if (i >= warmup) {
                        // An edge stamped before the write (a clock read late) counts as 0.
                        edge_hist.record_ns(static_cast<std::int64_t>(events[k].timestamp_ns - t0));
                        wake_hist.record_ns(static_cast<std::int64_t>(t1 - t0));
                    }
                }
            }
        }
    }
    req.set(out, false);
    bar.finish();

    const auto e = edge_hist.summarize();
    const auto w = wake_hist.summarize();

    // The wake-up latency by powers of two from 1024 ns: each of the
    // histogram's buckets lies inside one of these, so the counts are exact.
    struct bucket {
        std::uint64_t lower, upper, count;
    };
    std::vector<bucket> hist;
    for (const auto& fine : wake_hist.buckets()) {
        const auto lower = static_cast<std::uint64_t>(fine.lower);
        const std::uint64_t floor = lower < 1024 ? 0 : std::bit_floor(lower);
        if (hist.empty() || hist.back().lower != floor)
            hist.push_back({floor, floor == 0 ? 1024 : floor * 2, 0});
        hist.back().count += fine.count;
    }

    if (json) {
        json_writer j{std::cout};
        const auto write_stats = [&j](const char* k, const io::rt::latency_histogram::summary& s) {
            j.key(k)
                .begin_object()
                .member("min", s.min)
                .member("p50", s.p50)
                .member("p99", s.p99)
                .member("p99_9", s.p999)
                .member("max", s.max)
                .member("mean", s.mean)
                .end_object();
        };
        j.begin_object()
            .member("card", card.name)
            .member("model", card.model)
            .member("cos", card.cos)
            .member("output", out_name)
            .member("input", in_name)
            .member("rounds", rounds);
        write_stats("edge_ns", e);
        write_stats("wakeup_ns", w);
        j.key("histogram").begin_array();
        for (const auto& h : hist)
            j.begin_object().member("lower_ns", h.lower).member("upper_ns", h.upper).member("count", h.count).end_object();
        j.end_array().end_object().end_document();
        return exit_ok;
    }
    const auto us = [](std::int64_t ns) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%10.1f", static_cast<double>(ns) / 1000.0);
        return std::string(buf);
    };
    auto& o = std::cout;
    o << "latency of " << card.name << " (" << card.model << ", change of state: " << (card.cos.empty() ? "?" : card.cos)
      << "): " << out_name << " -> " << in_name << ", " << rounds << " round trips, in us\n"
      << "                 p50       p99     p99.9       max\n"
      << "  edge     " << us(e.p50) << us(e.p99) << us(e.p999) << us(e.max) << "   (write to the kernel's edge timestamp)\n"
      << "  wake-up  " << us(w.p50) << us(w.p99) << us(w.p999) << us(w.max) << "   (write to iotool reading the event)\n"
      << "wake-up histogram:\n";
    std::uint64_t top = 1;
    for (const auto& h : hist)
        top = std::max(top, h.count);
    for (const auto& h : hist) {
        char label[48];
        std::snprintf(label, sizeof label, "  %9.3f - %9.3f us |", static_cast<double>(h.lower) / 1000.0,
                      static_cast<double>(h.upper) / 1000.0);
        const auto n = static_cast<std::size_t>((h.count * 40 + top - 1) / top);
        o << label << std::string(n, '#') << std::string(41 - n, ' ') << h.count << '\n';
    }
    return exit_ok;
}

}  // namespace io::tools::iotool
