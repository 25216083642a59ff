// SPDX-License-Identifier: MIT
// The iogate component (libio_gate) with a scripted device in place of a
// card, for iogate_broker_test.py: the real node and MQTT transport against
// a real broker, with inputs driven from stdin. (Cards need gpiochips: the
// test VM's virtual cards; on the host there are none.)
//
//   gate_peer_node CONFIG      then on stdin:
//     edge NAME 0|1            one edge on input NAME (A0..A3)
//     burst N                  N alternating edges on A0, one DDATA each
//     stop                     a clean stop (NDEATH, DISCONNECT), then exit
// Prints "state STATE" on each change and "written NAME VALUE" on writes.
#include <io/event_loop.hpp>
#include <io/gate/config.hpp>
#include <io/gate/gateway.hpp>

#include <csignal>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <unistd.h>

using namespace std::chrono_literals;
namespace gate = io::gate;

namespace {

struct scripted_device final : gate::device {
    std::map<std::string, bool> inputs{{"A0", false}, {"A1", false}, {"A2", false}, {"A3", false}};
    std::map<std::string, bool> outputs{{"B0", false}, {"B1", false}};

    std::vector<gate::metric> birth_metrics() override {
        std::vector<gate::metric> m;
        for (const auto& [n, v] : inputs)
            m.push_back(gate::make_metric("Lines/" + n, gate::datatype::boolean, v));
        for (const auto& [n, v] : outputs)
            m.push_back(gate::make_metric("Lines/" + n, gate::datatype::boolean, v));
        return m;
    }
    write_status write(const gate::metric& m, std::vector<gate::metric>& confirmed) override {
        if (m.name.rfind("Lines/", 0) != 0)
            return write_status::unknown_metric;
        const auto name = m.name.substr(6);
        if (inputs.count(name) != 0)
            return write_status::not_writable;
        const auto it = outputs.find(name);
        if (it == outputs.end())
            return write_status::unknown_metric;
        if (!std::holds_alternative<bool>(m.val))
            return write_status::bad_value;
        it->second = std::get<bool>(m.val);
        std::cout << "written " << name << " " << it->second << std::endl;
        confirmed.push_back(gate::make_metric(m.name, gate::datatype::boolean, it->second, gate::utc_now_ms()));
        return write_status::done;
    }
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: gate_peer_node CONFIG\n";
        return 2;
    }
    try {
        const auto cfg = gate::load_config(argv[1]);
        io::event_loop loop;
        gate::gateway gw{cfg, loop};
        gate::node& node = gw.edge_node();
        node.log = [](const std::string& s) { std::cerr << "node: " << s << std::endl; };
        scripted_device dev;
        node.add_device("sim", dev);

        auto last = node.current_state();
        auto watch_state = loop.call_every(10ms, [&] {
            if (node.current_state() != last) {
                last = node.current_state();
                std::cout << "state " << gate::to_string(last) << std::endl;
                if (last == gate::node::state::stopped)
                    loop.stop();
            }
        });
        std::string pending;
        auto input = loop.watch(STDIN_FILENO, io::ready::in, [&](io::readiness) {
            char buf[4096];
            const auto n = ::read(STDIN_FILENO, buf, sizeof buf);
            if (n <= 0) {
                node.stop();
                return;
            }
            pending.append(buf, static_cast<std::size_t>(n));
            for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
                std::istringstream line(pending.substr(0, nl));
                pending.erase(0, nl + 1);
                std::string cmd, name;
                line >> cmd;
                if (cmd == "edge") {
                    int v = 0;
                    line >> name >> v;
                    dev.inputs[name] = v != 0;
                    node.device_data("sim", {gate::make_metric("Lines/" + name, gate::datatype::boolean, v != 0,
                                                               gate::utc_now_ms())});
                } else if (cmd == "burst") {
                    int count = 0;
                    line >> count;
                    for (int i = 0; i < count; ++i)
                        node.device_data("sim", {gate::make_metric("Lines/A0", gate::datatype::boolean, i % 2 == 0,
                                                                   gate::utc_now_ms())});
                } else if (cmd == "stop") {
                    node.stop();
                }
            }
        });
        gw.start();
        loop.run();
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "gate_peer_node: " << e.what() << "\n";
        return 1;
    }
}
