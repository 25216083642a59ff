// SPDX-License-Identifier: MIT
#pragma once

#include <io/line_request.hpp>

#include <string>
#include <vector>

namespace io::detail {

/// Builds a line_request around any descriptor, for tests that drive it
/// through the system-call seam without a gpiochip.
struct line_request_access {
    static line_request make(int fd, std::string chip_path, std::vector<unsigned> offsets) {
        return line_request{fd, std::move(chip_path), std::move(offsets)};
    }
};

}  // namespace io::detail
