// SPDX-License-Identifier: MIT
// iogate's Modbus/TCP server (io::gate::modbus_server, register_map) with
// scripted cards in place of real ones, for iogate_modbus_test.py: the real
// configuration parser, framing and register map against real clients
// (mbpoll, pymodbus), with the inputs driven from stdin. (Cards need
// gpiochips: the test VM's virtual cards; on the host there are none.)
//
//   modbus_peer_server CONFIG [PORT]   PORT overrides the configured port
//                                      (0: any free one); then on stdin:
//     inputs HEX           the levels of A0..A15 (bit i = Ai)
//     edges N LOST M       the counters of input registers 0-7
//     fail 0|1             every line access fails (exception 04)
//     stats                prints "stats accepted=.. refused=.. ..."
//     stop                 exits
// Each unit's card has inputs A0..A15 (port A), outputs B0..B7 (port B)
// and C0..C15 (port C, 16 lines). Prints "port N" once listening and
// "written UNIT NAME VALUE" for each line a client drives.
#include <io/event_loop.hpp>
#include <algorithm>
#include <io/gate/config.hpp>
#include <io/gate/modbus_server.hpp>

#include "memory_lines.hpp"

#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <unistd.h>

namespace gate = io::gate;

namespace {

struct unit {
    io::test::memory_lines card;
    std::map<unsigned, std::string> names;
    std::unique_ptr<gate::register_map> map;
};

std::unique_ptr<unit> make_unit(const gate::modbus_unit_entry& e) {
    auto u = std::make_unique<unit>();
    u->card.on_set = [id = e.id, names = &u->names](unsigned off, bool v) {
        std::cout << "written " << unsigned{id} << " " << (*names)[off] << " " << v << std::endl;
    };
    std::vector<gate::unit_line> lines;
    std::vector<gate::unit_port> ports{{"A", {}}, {"B", {}}, {"C", {}}};
    const auto add = [&](const std::string& name, unsigned off, bool output, std::size_t port) {
        bool writable = false;
        for (const auto& w : e.writable)
            writable = writable || w == name;
        lines.push_back(gate::unit_line{off, name, output, writable});
        ports[port].offsets.push_back(off);
        u->names[off] = name;
    };
    for (unsigned i = 0; i < 16; ++i)
        add("A" + std::to_string(i), i, false, 0);
    for (unsigned i = 0; i < 8; ++i)
        add("B" + std::to_string(i), 16 + i, true, 1);
    for (unsigned i = 0; i < 16; ++i)
        add("C" + std::to_string(i), 24 + i, true, 2);
    for (const auto& w : e.writable)
        if (u->names.end() ==
            std::find_if(u->names.begin(), u->names.end(), [&](const auto& kv) { return kv.second == w; }))
            throw std::runtime_error("unit " + std::to_string(e.id) + ": no line " + w);
    u->map = std::make_unique<gate::register_map>(std::move(lines), ports, u->card);
    return u;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2 && argc != 3) {
        std::cerr << "usage: modbus_peer_server CONFIG [PORT]\n";
        return 2;
    }
    try {
        auto cfg = gate::load_config(argv[1]);
        if (!cfg.modbus.enabled)
            throw std::runtime_error("no [modbus_server] in " + std::string{argv[1]});
        if (argc == 3)
            cfg.modbus.options.port = static_cast<std::uint16_t>(std::stoul(argv[2]));
        io::event_loop loop;
        gate::modbus_server server{cfg.modbus.options, loop};
        server.log = [](const std::string& s) { std::cerr << "log: " << s << std::endl; };
        std::vector<std::unique_ptr<unit>> units;
        for (const auto& e : cfg.modbus.units) {
            units.push_back(make_unit(e));
            server.set_unit(e.id, units.back()->map.get());
        }
        std::cout << "port " << server.port() << std::endl;

        std::string pending;
        auto input = loop.watch(STDIN_FILENO, io::ready::in, [&](io::readiness) {
            char buf[4096];
            const auto n = ::read(STDIN_FILENO, buf, sizeof buf);
            if (n <= 0) {
                loop.stop();
                return;
            }
            pending.append(buf, static_cast<std::size_t>(n));
            for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
                std::istringstream line(pending.substr(0, nl));
                pending.erase(0, nl + 1);
                std::string cmd;
                line >> cmd;
                if (cmd == "inputs") {
                    unsigned long v = 0;
                    line >> std::hex >> v;
                    for (auto& u : units)
                        for (unsigned i = 0; i < 16; ++i)
                            u->card.levels[i] = (v >> i & 1U) != 0;
                    std::cout << "ok" << std::endl;
                } else if (cmd == "edges") {
                    std::string lost_word;
                    std::uint64_t e = 0, l = 0;
                    line >> e >> lost_word >> l;
                    for (auto& u : units) {
                        u->card.edges = e;
                        u->card.lost = l;
                    }
                    std::cout << "ok" << std::endl;
                } else if (cmd == "fail") {
                    int f = 0;
                    line >> f;
                    for (auto& u : units)
                        u->card.failing = f != 0;
                    std::cout << "ok" << std::endl;
                } else if (cmd == "stats") {
                    const auto& s = server.stats();
                    std::uint64_t refused_writes = 0;
                    for (const auto& u : units)
                        refused_writes += u->map->refused_writes();
                    std::cout << "stats accepted=" << s.accepted << " refused=" << s.refused
                              << " idle_closed=" << s.idle_closed << " requests=" << s.requests
                              << " exceptions=" << s.exceptions << " bad_frames=" << s.bad_frames
                              << " oversized=" << s.oversized << " truncated=" << s.truncated
                              << " connections=" << server.connections() << " refused_writes=" << refused_writes
                              << std::endl;
                } else if (cmd == "stop") {
                    loop.stop();
                }
            }
        });
        loop.run();
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "modbus_peer_server: " << e.what() << "\n";
        return 1;
    }
}
