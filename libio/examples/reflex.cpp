// SPDX-License-Identifier: MIT
// Follows an input with an output: every edge of IN sets OUT to IN's level.
//   reflex CARD IN OUT [--count N]      e.g. reflex bench IN0 OUT0
#include <io/io.hpp>

#include <array>
#include <cstring>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
    if (argc < 4) {
        std::cerr << "usage: reflex CARD IN OUT [--count N]\n";
        return 2;
    }
    const unsigned long count = argc > 5 && std::strcmp(argv[4], "--count") == 0 ? std::stoul(argv[5]) : 0;
    try {
        const auto card = io::find_card(argv[1]);
        io::chip chip{card.gpiochip};
        auto in = chip.prepare_request().consumer("reflex").add(argv[2], io::line_config::input(io::edge::both)).make();
        auto out = chip.prepare_request().consumer("reflex").add(argv[3], io::line_config::output()).make();
        const unsigned out_line = out.offsets()[0];

        io::event_loop loop;
        std::array<io::edge_event, 16> events{};
        unsigned long handled = 0;
        auto watch = loop.watch(in.fd(), io::ready::in, [&](io::readiness) {
            const auto n = in.read_edge_events(events);
            for (std::size_t i = 0; i < n; ++i) {
                out.set(out_line, events[i].kind == io::edge::rising);
                if (count != 0 && ++handled == count)
                    loop.stop();
            }
        });
        std::cout << "following " << argv[2] << " with " << argv[3] << std::endl;
        loop.run();
    } catch (const std::exception& e) {
        std::cerr << "reflex: " << e.what() << "\n";
        return 1;
    }
}
