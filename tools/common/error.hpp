// SPDX-License-Identifier: MIT
// Errors of the tools: each carries the exit status it ends the tool with.
#pragma once

#include "exit_code.hpp"

#include <exception>
#include <stdexcept>
#include <string>

namespace io::tools {

/// An error the tool reports as it is, ending with its exit status.
class tool_error : public std::runtime_error {
public:
    tool_error(exit_code code, const std::string& what) : std::runtime_error{what}, code_{code} {}
    exit_code code() const noexcept { return code_; }

private:
    exit_code code_;
};

/// Shorthands for the common kinds.
[[noreturn]] void usage_failure(const std::string& what);
[[noreturn]] void not_found(const std::string& what);

/// The exit status for an exception and the message to print for it
/// (without the program name). Mapping: tool_error its own code;
/// io::invalid_argument and std::invalid_argument 2; std::system_error by
/// errno: ENOENT 3, ENOTTY 3 on opening a non-tty and 2 otherwise (an ioctl
/// the driver lacks), EINVAL and EOPNOTSUPP 2 (the device refuses the value),
/// EACCES and EPERM 4, anything else 5.
struct classified {
    exit_code code;
    std::string message;
};
classified classify(std::exception_ptr e);

}  // namespace io::tools
