// SPDX-License-Identifier: MIT
// Blinks one output line of a card.
//   blink CARD LINE [PERIOD_MS [COUNT]]      e.g. blink bench A0 500
// CARD is a label, location, name or MODEL#INDEX (see io::find_card);
// LINE a line name such as A0 or OUT3. COUNT 0 blinks until interrupted.
#include <io/io.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: blink CARD LINE [PERIOD_MS [COUNT]]\n";
        return 2;
    }
    try {
        const auto card = io::find_card(argv[1]);
        const std::chrono::milliseconds period{argc > 3 ? std::stoul(argv[3]) : 500};
        const unsigned long count = argc > 4 ? std::stoul(argv[4]) : 0;

        io::chip chip{card.gpiochip};
        auto lines = chip.prepare_request().consumer("blink").add(argv[2], io::line_config::output()).make();
        const unsigned line = lines.offsets()[0];

        io::event_loop loop;
        bool level = false;
        unsigned long toggles = 0;
        auto timer = loop.call_every(period, [&] {
            level = !level;
            lines.set(line, level);
            std::cout << argv[2] << " = " << level << std::endl;
            if (count != 0 && ++toggles == count)
                loop.stop();
        });
        loop.run();
    } catch (const std::exception& e) {
        std::cerr << "blink: " << e.what() << "\n";
        return 1;
    }
}
