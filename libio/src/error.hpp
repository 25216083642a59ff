// SPDX-License-Identifier: MIT
#pragma once

#include <io/error.hpp>

#include <string_view>
#include <system_error>

namespace io::detail {

/// The one place where an errno becomes an exception: a std::system_error in
/// the system category whose what() reads "CONTEXT: REASON", or
/// "CONTEXT: device removed: REASON" for the errors of a vanished device.
[[noreturn]] LIBIO_EXPORT void throw_errno(int err, std::string_view context);

/// The error_code for an errno value.
inline std::error_code errno_code(int err) noexcept {
    return {err, std::system_category()};
}

}  // namespace io::detail
