// SPDX-License-Identifier: MIT
// Built against an installed libio-gate: a configuration parsed and checked
// as iogate's, a Sparkplug B payload through the wire format and back, and
// the gateway made on an event loop of the application's own (not started:
// there is no broker here).
#include <io/event_loop.hpp>
#include <io/gate/config.hpp>
#include <io/gate/gateway.hpp>
#include <io/gate/payload.hpp>

#include <cstdio>

int main() {
    const auto cfg = io::gate::parse_config(R"(group_id = "plant1"
edge_node_id = "node7"
[mqtt]
servers = ["mqtt://127.0.0.1:1883"]
allow_plain_loopback = true
[store]
journal_file = ""
)",
                                            "embedded.toml");
    io::gate::payload p;
    p.seq = 7;
    p.metrics.push_back(io::gate::make_metric("Lines/IN0", io::gate::datatype::boolean, true, 1));
    const auto back = io::gate::decode(io::gate::encode(p));
    if (back.seq != 7u || back.metrics.size() != 1 || back.metrics[0].name != "Lines/IN0" ||
        std::get<bool>(back.metrics[0].val) != true) {
        std::puts("payload did not survive encode and decode");
        return 1;
    }
    io::event_loop loop;
    io::gate::gateway g(cfg, loop);
    std::printf("gateway for %s/%s made on the application's loop\n", cfg.node.group_id.c_str(),
                cfg.node.edge_node_id.c_str());
    return 0;
}
