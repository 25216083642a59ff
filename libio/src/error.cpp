// SPDX-License-Identifier: MIT
#include "error.hpp"

#include <cerrno>
#include <string>

namespace io {

bool is_device_removed(std::error_code ec) noexcept {
    if (ec.category() != std::system_category())
        return false;
    switch (ec.value()) {
    case ENODEV:
    case ENXIO:
    case ESHUTDOWN:
    case EIO:
        return true;
    default:
        return false;
    }
}

}  // namespace io

namespace io::detail {

void throw_errno(int err, std::string_view context) {
    const auto ec = errno_code(err);
    // system_error's what() is "WHAT: " followed by the errno's own text.
    std::string what{context};
    if (is_device_removed(ec))
        what += ": device removed";
    throw std::system_error(ec, what);
}

}  // namespace io::detail
