// SPDX-License-Identifier: MIT
#include <io/version.hpp>

namespace io {

std::string_view version() noexcept {
    return LIBIO_VERSION_STRING;
}

}  // namespace io
