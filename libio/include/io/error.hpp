// SPDX-License-Identifier: MIT
#pragma once

#include <io/export.hpp>

#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace io {

/// Thrown when an object is used in a way its state forbids, for example a
/// request that was already released. It signals a bug in the caller, not a
/// condition of the system, so it derives from std::logic_error.
class LIBIO_EXPORT usage_error : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

/// Thrown when a value given by the caller is out of range (a baud rate, a
/// line offset, a setting); the message names the value and what is allowed.
class LIBIO_EXPORT invalid_argument : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

/// Thrown by io::find_card when a key matches several cards; the message
/// lists them and how to name one. A kind of io::invalid_argument, so code
/// that treats every bad key alike needs no change.
class LIBIO_EXPORT ambiguous_card : public invalid_argument {
public:
    using invalid_argument::invalid_argument;
};

/// True when an error means the device is gone (unplugged, card removed,
/// driver unbound): ENODEV, ENXIO, ESHUTDOWN, and EIO on a hung-up tty.
LIBIO_EXPORT bool is_device_removed(std::error_code ec) noexcept;

}  // namespace io
