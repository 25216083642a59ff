// SPDX-License-Identifier: MIT
// What surrounds a tty: its driver and sysfs attributes, and who holds it.
// Diagnostics and configuration around the port, not its I/O path.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <sys/types.h>

namespace io::detail {

/// The tty's name in /sys/class/tty ("ttyS4", "ttyUSB0"), or "" when it has
/// none there (ptys).
std::string tty_name(const std::filesystem::path& dev);

/// The kernel driver of a tty: the driver of its device in sysfs, looking
/// past the serial core's own "port" and "ctrl" devices (Linux 6.5+) to the
/// hardware's driver ("serial" for 8250_pci, "ftdi_sio"); else the tty
/// driver that owns the device number in /proc/tty/drivers ("pty" for ptys).
std::string tty_driver(const std::string& name, dev_t rdev);

/// "pid 1234 (minicom)" for the processes that hold a flock on the inode
/// (/proc/locks), else "" .
std::string lock_holders(dev_t dev, ino_t ino);

/// "pid 1234 (minicom)" for the processes with the character device rdev
/// open (/proc/PID/fd), else "".
std::string open_holders(dev_t rdev);

/// A decimal sysfs attribute of the tty's device ("latency_timer"): its path
/// when the device has it.
std::optional<std::filesystem::path> tty_attribute(const std::string& name, const char* attribute);

/// Reads a decimal attribute through the system-call seam; -1 with errno on failure.
long read_attribute(const std::filesystem::path& p);

/// Writes a decimal attribute through the seam; false with errno on failure.
bool write_attribute(const std::filesystem::path& p, long value);

}  // namespace io::detail
