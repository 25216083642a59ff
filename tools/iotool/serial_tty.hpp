// SPDX-License-Identifier: MIT
// What iotool needs of a tty beyond io::serial_port: a look at a port that
// changes nothing (io::serial_port applies settings when it opens a port), and
// keeping settings after iotool exits, as stty does (io::serial_port puts the
// previous ones back when it closes). Kept apart because it includes the
// kernel's termios headers, which clash with glibc's.
#pragma once

#include <io/serial_port.hpp>
#include <io/serial_settings.hpp>

#include <optional>
#include <string>

namespace io::tools::iotool {

/// A port as it is now, read with ioctls that change nothing.
struct tty_state {
    std::optional<io::serial_settings> settings;  ///< nullopt when out of libio's range (settings_error says why)
    std::string settings_error;
    std::optional<io::modem_lines> modem;        ///< nullopt when the driver has no modem lines
    std::optional<io::serial_counters> counters;  ///< nullopt without TIOCGICOUNT
    std::optional<bool> low_latency;             ///< nullopt without TIOCGSERIAL
    int latency_timer = -1;                      ///< FTDI latency_timer in ms, -1 when none
    std::string driver;                          ///< from sysfs, "" when unknown
};

/// Opens path without blocking and reads its state. Throws std::system_error
/// (ENOENT, EACCES, ENOTTY "not a serial port", ...).
tty_state read_tty(const std::string& path);

/// Keeps line settings after an io::serial_port that set them closes.
/// Construct before the port is opened; capture() the port's line settings
/// and mode while it is open; commit() after it closed writes them back,
/// changing only framing, speed, flow control and mode.
class tty_keeper final {
public:
    explicit tty_keeper(const std::string& path);
    ~tty_keeper();
    tty_keeper(const tty_keeper&) = delete;
    tty_keeper& operator=(const tty_keeper&) = delete;

    void capture(int port_fd);
    void commit();

private:
    struct saved;
    std::string path_;
    int fd_ = -1;
    saved* saved_ = nullptr;
};

}  // namespace io::tools::iotool
