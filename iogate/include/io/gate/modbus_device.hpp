// SPDX-License-Identifier: MIT
#pragma once

#include <io/event_loop.hpp>
#include <io/gate/config.hpp>
#include <io/gate/node.hpp>
#include <io/modbus.hpp>
#include <io/modbus_config.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace io::gate {

/// A remote Modbus I/O module as a Sparkplug device, with a card's metrics
/// (card_device.hpp) and the module's own line and port names:
/// "Lines/DI0".. and "Lines/DO0".. (Boolean), "Ports/DI" (UInt8 up to 8
/// inputs, else UInt64) and "Lost events" (UInt64). The device polls the
/// module on the bus's thread; each edge a poll finds becomes one metric
/// with the poll's time in UTC ms and its timestamp_ns (CLOCK_MONOTONIC at
/// the poll's completion), seqno and line_seqno as properties.
///
/// Presence: the device is published (on_presence(true, ...)) once a poll
/// has answered and its outputs have been read, unpublished (on_presence
/// (false, why)) when a poll gets no answer, and published again when the
/// module answers.
///
/// Nothing here blocks the event loop: input levels come from polling, and
/// the requests that wait for the module (reading the outputs for a birth,
/// a DCMD write and its read-back) run in a thread of the device's own, on
/// a duplicate of the module, one after the other; their results come back
/// through the loop. A DCMD write is therefore `pending`: its DDATA (the
/// output read back) follows once the module answered, which on a module
/// that stopped answering takes up to its timeout x (1 + retries). At most
/// 64 requests wait; later writes fail.
class modbus_device final : public device {
public:
    /// `module` must outlive the device and is polled by it every `poll`;
    /// `writable` are outputs (DO names) DCMD may write.
    /// \throws io::invalid_argument for a writable name that is not an
    ///         output of the module.
    modbus_device(modbus_module& module, std::chrono::milliseconds poll, const std::vector<std::string>& writable,
                  event_loop& loop, std::function<void(std::vector<metric>)> on_data,
                  std::function<void(bool present, const std::string& why)> on_presence);
    ~modbus_device() override;
    modbus_device(const modbus_device&) = delete;
    modbus_device& operator=(const modbus_device&) = delete;

    std::vector<metric> birth_metrics() override;
    write_status write(const metric& m, std::vector<metric>& confirmed) override;

    /// Whether the device is published (it answered, its outputs are read).
    bool published() const noexcept;

    /// Called for log lines (a write that failed); default: none.
    std::function<void(const std::string&)> log;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// The [[modbus_module]] entries as devices of a node: modules that share a
/// bus share one connection or serial port (io::modbus_site); a module is
/// added to the node when it answers (DBIRTH) and removed when it stops
/// (DDEATH). A module whose bus cannot be opened yet (a serial device that
/// is absent) is tried again every 5 s.
class modbus_device_set final {
public:
    modbus_device_set(std::vector<resolved_modbus_module> modules, node& n, event_loop& loop);
    ~modbus_device_set();
    modbus_device_set(const modbus_device_set&) = delete;
    modbus_device_set& operator=(const modbus_device_set&) = delete;

    /// Opens the modules and starts polling them; failures are logged.
    void start();
    /// The device IDs published now.
    std::vector<std::string> device_ids() const;

    /// Called for log lines; default: none.
    std::function<void(const std::string&)> log;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace io::gate
