// SPDX-License-Identifier: MIT
#pragma once

#include <io/event_loop.hpp>
#include <io/gate/node.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace io::gate {

/// One MQTT server of the list.
struct mqtt_server {
    std::string host;
    std::uint16_t port = 8883;
    bool tls = true;  ///< false only for loopback with allow_plain_loopback

    /// "mqtts://HOST:PORT" or "mqtt://HOST:PORT".
    std::string uri() const;
};

struct mqtt_options {
    std::vector<mqtt_server> servers;  ///< tried in order, wrapping
    std::string client_id;
    std::string ca_file;    ///< the CA that signed the servers' certificates
    std::string cert_file;  ///< this node's certificate (PEM)
    std::string key_file;   ///< its private key; refused if others may read it
    /// Plain MQTT is allowed to 127.0.0.1, ::1 and localhost only, and only
    /// with this switch (for tests).
    bool allow_plain_loopback = false;
    std::chrono::seconds keepalive{30};
    std::chrono::milliseconds backoff_min{500};   ///< the first retry's wait; doubles to backoff_max
    std::chrono::milliseconds backoff_max{30000};
    std::chrono::milliseconds disconnect_grace{2000};  ///< wait for QoS 1 acks before DISCONNECT
};

/// True for 127.0.0.1 (127.0.0.0/8), ::1 and localhost.
bool is_loopback_host(const std::string& host) noexcept;

/// Throws io::invalid_argument when the options are unsafe or incomplete: no
/// server, plain MQTT to a host that is not loopback or without the switch,
/// TLS without CA, certificate or key, files that cannot be read, a key
/// readable by group or others (the message names the file and the fix).
void check_options(const mqtt_options& options);

/// The common name (CN) of the first certificate in a PEM file: the
/// identity a broker takes from it (mosquitto's use_identity_as_username).
/// Throws io::invalid_argument naming the file.
std::string certificate_common_name(const std::string& cert_file);

/// libmosquitto in its own thread: DNS, TCP and TLS handshakes and stalls
/// happen there, never on the node's thread. Results reach the listener
/// through the given event loop (an eventfd watched by it), so the node
/// sees them on its own thread. Connects only when asked (node::connect
/// asks with each new Will), with backoff after failures; walks the
/// server list after a failure or on disconnect(true).
class mqtt_transport final : public transport {
public:
    /// Checks the options (check_options) and starts the network thread.
    mqtt_transport(mqtt_options options, event_loop& loop, transport_listener& listener);
    ~mqtt_transport() override;
    mqtt_transport(const mqtt_transport&) = delete;
    mqtt_transport& operator=(const mqtt_transport&) = delete;

    void connect(const will_message& will) override;
    bool publish(const std::string& topic, const std::string& payload, int qos, bool retain) override;
    void subscribe(const std::string& topic, int qos) override;
    void disconnect(bool next_server) override;

    /// The server of the current or last connection attempt.
    std::string current_server() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace io::gate
