// SPDX-License-Identifier: MIT
// Prints the edges of input lines with the kernel's timestamps.
//   edges CARD LINE... [--count N]      e.g. edges bench B0 B1 --count 10
#include <io/io.hpp>

#include <cstdint>
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
        unsigned long seen = 0;
        std::uint64_t lost = 0;
        int rc = 0;
        // Events arrive in batches read into one buffer (no allocation per event).
        auto watch = io::on_edge_events(loop, lines, [&](std::span<const io::edge_event> events, std::error_code ec) {
            if (ec) {
                std::cerr << "edges: " << ec.message() << "\n";
                rc = 1;
                loop.stop();
                return;
            }
            if (lines.lost_events() != lost) {  // dropped by the kernel: said, never silent
                lost = lines.lost_events();
                std::cout << "lost " << lost << " events so far\n";
            }
            for (const auto& e : events) {
                std::cout << e.timestamp_ns << " " << chip.info(e.line).name << " " << io::to_string(e.kind)
                          << " seq " << e.seqno << "\n";
                if (count != 0 && ++seen == count) {
                    loop.stop();
                    break;
                }
            }
            std::cout.flush();
        });
        loop.run();
        return rc;
    } catch (const std::exception& e) {
        std::cerr << "edges: " << e.what() << "\n";
        return 1;
    }
}
