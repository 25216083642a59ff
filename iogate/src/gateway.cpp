// SPDX-License-Identifier: MIT
#include <io/gate/gateway.hpp>

#include <algorithm>
#include <chrono>
#include <optional>

namespace io::gate {

namespace {

// Hands the transport's events to the node, which needs the transport first.
struct forward final : transport_listener {
    node* n = nullptr;
    void on_connected() override { n->on_connected(); }
    void on_connection_lost(const std::string& why) override { n->on_connection_lost(why); }
    void on_message(const std::string& t, const std::string& p) override { n->on_message(t, p); }
};

}  // namespace

struct gateway::impl {
    file_bdseq_store store;
    journal store_forward;
    forward fwd;
    mqtt_transport mqtt;
    node n;
    registration replay_timer;

    impl(const gate_config& c, event_loop& loop)
        : store{c.state_file},
          store_forward{c.journal_file, c.journal_capacity},
          mqtt{c.mqtt, loop, fwd},
          n{c.node, mqtt, store} {
        (void)store.last();  // a broken state file stops us here, with its name
        fwd.n = &n;
        n.set_journal(&store_forward);
        constexpr auto tick = std::chrono::milliseconds{100};
        const std::size_t per_tick = std::max<std::size_t>(1, c.replay_per_second / 10);
        replay_timer = loop.call_every(tick, [this, per_tick] { n.replay(per_tick); });
    }
};

gateway::gateway(const gate_config& config, event_loop& loop) {
    check_config(config);
    impl_ = std::make_unique<impl>(config, loop);
}

gateway::~gateway() = default;

node& gateway::edge_node() noexcept {
    return impl_->n;
}

void gateway::start() {
    impl_->n.start();
}

void gateway::stop() {
    impl_->n.stop();
}

bool gateway::stopped() const noexcept {
    return impl_->n.current_state() == node::state::stopped;
}

}  // namespace io::gate
