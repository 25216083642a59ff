// SPDX-License-Identifier: MIT
#pragma once

#include <io/event_loop.hpp>
#include <io/gate/config.hpp>
#include <io/gate/node.hpp>
#include <io/serial_port.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace io::gate {

/// A serial port's modem lines and error counters as a Sparkplug device:
/// "Modem/CTS", "Modem/DSR", "Modem/DCD", "Modem/RI" (inputs) and
/// "Modem/DTR", "Modem/RTS" (outputs), Boolean; "Errors/Frame",
/// "Errors/Parity", "Errors/Overrun" (the UART's FIFO and the tty's buffer)
/// and "Errors/Break", UInt64, the driver's counts since
/// the port was first opened; "Counters/Rx" and "Counters/Tx", UInt64, the
/// characters moved. Each metric is reported by exception: a DDATA carries
/// the metrics whose value changed, except Counters/Rx and Counters/Tx,
/// which change with every character and are reported with a birth and
/// then at most once every rx_tx_period when they changed.
///
/// The device never reads or writes the port's data: the port is opened
/// with io::control_only, beside whatever program owns the data stream,
/// whose settings it neither changes nor restores.
///
/// Presence: published (on_presence(true, ...)) once the port is open and
/// its lines and counters are read; unpublished (on_presence(false, why))
/// when an ioctl fails (the device removed: EIO, ENODEV), and opened again
/// every `retry` until it works.
///
/// Inputs are also awaited in TIOCMIWAIT by a thread per port, which is
/// woken for stopping by SIGURG: the first serial_device installs a
/// process-wide SIGURG handler that does nothing (without SA_RESTART), and
/// the thread alone unblocks the signal. A program that embeds this class
/// and uses SIGURG itself (out-of-band socket data) must not replace that
/// handler, and sees its own blocking calls return EINTR on SIGURG.
class serial_device final : public device {
public:
    /// Opens the port (io::serial_port(path, io::control_only)); called at
    /// each attempt, so that a name is resolved again (a card's port that
    /// appears later). Throws what the open throws.
    using opener = std::function<serial_port()>;

    /// Nothing is opened before start(). `writable` holds "DTR" and/or
    /// "RTS": the lines DCMD may set.
    /// \throws io::invalid_argument for another name in writable, or a
    ///         poll or retry period that is not positive.
    serial_device(std::string name, opener open, std::chrono::milliseconds poll,
                  const std::vector<std::string>& writable, std::chrono::milliseconds retry, event_loop& loop,
                  std::function<void(std::vector<metric>)> on_data,
                  std::function<void(bool present, const std::string& why)> on_presence);
    ~serial_device() override;
    serial_device(const serial_device&) = delete;
    serial_device& operator=(const serial_device&) = delete;

    /// The first attempt to open the port (on_presence may be called from here).
    void start();

    std::vector<metric> birth_metrics() override;
    write_status write(const metric& m, std::vector<metric>& confirmed) override;

    /// Whether the device is published (the port is open).
    bool published() const noexcept;

    /// How often Counters/Rx and Counters/Tx may be reported; 10 s unless
    /// set (before start()).
    std::chrono::milliseconds rx_tx_period{10000};

    /// Called for log lines (an open that failed, a failed DCMD); default: none.
    std::function<void(const std::string&)> log;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// The [[serial_port]] entries as devices of a node: a port is added to the
/// node when it opens (DBIRTH) and removed when it fails (DDEATH); absent
/// or failed ports are tried again every 5 s.
class serial_device_set final {
public:
    serial_device_set(const std::vector<serial_port_entry>& ports, node& n, event_loop& loop);
    ~serial_device_set();
    serial_device_set(const serial_device_set&) = delete;
    serial_device_set& operator=(const serial_device_set&) = delete;

    /// Opens the ports; failures are logged and tried again.
    void start();
    /// The device IDs published now.
    std::vector<std::string> device_ids() const;

    /// Called for log lines; default: none.
    std::function<void(const std::string&)> log;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// The path of a [[serial_port]] port key: an absolute path as it is, a tty
/// name (ttyS4) as /dev/ttyS4, CARD@N (or CARD, port 0) as that port of the
/// card io::find_card finds (io::serial_port_path).
/// \throws io::invalid_argument when no card or port matches.
std::filesystem::path resolve_serial_port(const std::string& port);

}  // namespace io::gate
