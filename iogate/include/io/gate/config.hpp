// SPDX-License-Identifier: MIT
#pragma once

#include <io/error.hpp>
#include <io/gate/card_device.hpp>
#include <io/gate/modbus_units.hpp>
#include <io/gate/mqtt_transport.hpp>
#include <io/gate/node.hpp>

#include <io/modbus_config.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace io::gate {

/// One [[card]] of the configuration.
struct card_entry {
    std::string card;       ///< how io::find_card names it (label, location, name, ...)
    std::string device_id;  ///< the Sparkplug device ID; empty: the card's label
    card_options options;
};

/// One [[modbus_module]] of the configuration: a remote Modbus I/O module
/// published as a device.
struct modbus_module_entry {
    /// A libio Modbus URI (modbus-tcp://..., modbus-rtu:...) or the name of
    /// a module configured in libio's configuration (/etc/libio/modbus.d).
    std::string module;
    /// The Sparkplug device ID; empty: the configured module's name.
    std::string device_id;
    /// The poll period; nullopt: the libio configuration's, else 100 ms.
    std::optional<std::chrono::milliseconds> poll;
    /// Outputs (DO0..) DCMD may write.
    std::vector<std::string> writable;
    /// "FILE:LINE: modbus_module[N]": where it was configured, for errors
    /// found once libio's configuration is read.
    std::string where;
};

/// One [[serial_port]] of the configuration: a serial port's modem lines
/// and error counters published as a device (serial_device.hpp).
struct serial_port_entry {
    /// An absolute path (/dev/ttyS4, /dev/serial/by-id/...), a tty name
    /// (ttyS4) or CARD@N, port N of a card (resolve_serial_port).
    std::string port;
    /// The Sparkplug device ID; given, or the tty name of a port given as
    /// a tty name or /dev/NAME.
    std::string device_id;
    /// How often the lines and counters are read: 10..60000 ms, 1000 unless set.
    std::chrono::milliseconds poll{1000};
    /// "DTR", "RTS": the lines DCMD may set (needs [commands] enabled).
    std::vector<std::string> writable;
};

/// Everything /etc/iogate/iogate.toml says.
struct gate_config {
    node_config node;
    mqtt_options mqtt;
    std::string state_file = "/var/lib/iogate/state";
    /// Store and forward ([store]): the journal's file ("" keeps it in
    /// memory only), its bound in metrics, and how fast it is replayed.
    std::string journal_file = "/var/lib/iogate/journal";
    std::size_t journal_capacity = 10000;
    unsigned replay_per_second = 500;
    std::vector<card_entry> cards;
    std::vector<modbus_module_entry> modbus_modules;
    std::vector<serial_port_entry> serial_ports;
    /// [modbus_server]; with it, [mqtt] may be left out (a Modbus-only
    /// gateway: mqtt.servers is then empty).
    modbus_server_config modbus;
};

/// A configuration that cannot be used; the message reads
/// "FILE: KEY: what is wrong; what is allowed".
class config_error : public io::invalid_argument {
public:
    using io::invalid_argument::invalid_argument;
};

/// Reads and checks a configuration file (config_error).
gate_config load_config(const std::string& path);
/// The same from text; `source` names it in messages.
gate_config parse_config(std::string_view text, const std::string& source);

/// What can only be checked against the files: the MQTT options
/// (check_options: TLS files readable, the key private) and, with TLS,
/// that the certificate's common name is the edge node ID (the identity the
/// broker gives the node). Throws io::invalid_argument.
void check_config(const gate_config& config);

/// A [[modbus_module]] with its address, model and poll period known.
struct resolved_modbus_module {
    io::modbus_module_config module;  ///< name: the device ID
    std::vector<std::string> writable;
};

/// The [[modbus_module]] entries as libio module configurations, names
/// looked up in `libio_dir` (load_modbus_config()).
/// Throws config_error naming the entry for a name libio does not
/// configure, a module without a model (iogate does not ask a module for
/// it: that would hold its event loop), or writable lines that are not
/// outputs of the model; io::invalid_argument for a broken libio file.
std::vector<resolved_modbus_module> resolve_modbus_modules(const gate_config& config,
                                                           const std::filesystem::path& libio_dir);

/// "mqtts://HOST[:PORT]" (port 8883) or "mqtt://HOST[:PORT]" (1883), HOST
/// a name, an IPv4 address or [IPv6]. Throws io::invalid_argument.
mqtt_server parse_server_uri(std::string_view uri);

/// The host name (the default edge node ID).
std::string host_name();

}  // namespace io::gate
