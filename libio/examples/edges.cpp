// SPDX-License-Identifier: MIT
// Prints the edges of input lines with the kernel's timestamps.
//   edges CARD LINE... [--count N]      e.g. edges bench B0 B1 --count 10
#include <io/io.hpp>

#include <array>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    std::vector<std::string> names;
    unsigned long count = 0;
    for (int i = 2; i < argc; ++i) {
        if (std::strcmp(argv[i], "--count") == 0 && i + 1 < argc)
            count = std::stoul(argv[++i]);
        else
            names.emplace_back(argv[i]);
    }
    if (argc < 3 || names.empty()) {
        std::cerr << "usage: edges CARD LINE... [--count N]\n";
        return 2;
    }
    try {
        const auto card = io::find_card(argv[1]);
        io::chip chip{card.gpiochip};
        auto builder = chip.prepare_request().consumer("edges");
        for (const auto& n : names)
            builder.add(n, io::line_config::input(io::edge::both));
        auto lines = builder.make();

        io::event_loop loop;
        std::array<io::edge_event, 64> events{};  // read into this buffer; no allocation per event
        unsigned long seen = 0;
        auto watch = loop.watch(lines.fd(), io::ready::in, [&](io::readiness) {
            const auto n = lines.read_edge_events(events);
            for (std::size_t i = 0; i < n; ++i) {
                const auto& e = events[i];
                std::cout << e.timestamp_ns << " " << chip.info(e.line).name << " " << io::to_string(e.kind)
                          << " seq " << e.seqno << "\n";
                if (count != 0 && ++seen == count)
                    loop.stop();
            }
            if (lines.lost_events() != 0)
                std::cout << "lost " << lines.lost_events() << " events so far\n";
            std::cout.flush();
        });
        loop.run();
    } catch (const std::exception& e) {
        std::cerr << "edges: " << e.what() << "\n";
        return 1;
    }
}
