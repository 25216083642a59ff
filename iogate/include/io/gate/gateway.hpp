// SPDX-License-Identifier: MIT
#pragma once

#include <io/event_loop.hpp>
#include <io/gate/config.hpp>
#include <io/gate/journal.hpp>
#include <io/gate/mqtt_transport.hpp>
#include <io/gate/node.hpp>

#include <memory>

namespace io::gate {

/// The edge node put together from a configuration, on the caller's event
/// loop: bdSeq's state file, the journal (store and forward, replayed at
/// the configured rate), the MQTT transport in its own thread and the node.
/// Add devices with edge_node().add_device(); nothing connects before
/// start(). What iogate runs, and what an application embeds.
class gateway final {
public:
    /// Throws what the pieces throw (a broken state file or journal,
    /// unsafe MQTT options).
    gateway(const gate_config& config, event_loop& loop);
    ~gateway();
    gateway(const gateway&) = delete;
    gateway& operator=(const gateway&) = delete;

    node& edge_node() noexcept;
    /// The first CONNECT.
    void start();
    /// NDEATH, DISCONNECT; stopped() once done.
    void stop();
    bool stopped() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace io::gate
