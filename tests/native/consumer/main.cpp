// SPDX-License-Identifier: MIT
#include <io/io.hpp>

#include <iostream>

int main() {
    io::event_loop loop;
    std::cout << "libio " << io::version() << " " << io::to_string(io::edge::both) << "\n";
    return io::parse_port_layout("A:8:io").size() == 1 ? 0 : 1;
}
