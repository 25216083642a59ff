// SPDX-License-Identifier: MIT
// Small text files of /proc and /sys.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

namespace io::detail {

/// The first line of a file, without its newline; "" when it cannot be read.
inline std::string first_line(const std::filesystem::path& p) {
    std::ifstream f{p};
    std::string s;
    std::getline(f, s);
    return s;
}

}  // namespace io::detail
