// SPDX-License-Identifier: MIT
#pragma once

#include <io/export.hpp>

#include <string_view>

namespace io {

/// The version of the libio library loaded at run time, "MAJOR.MINOR.PATCH".
/// It can differ from the headers an application was built with; the soname
/// (libio.so.1) is what guarantees ABI compatibility.
LIBIO_EXPORT std::string_view version() noexcept;

}  // namespace io
