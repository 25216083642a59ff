// SPDX-License-Identifier: MIT
// Exit statuses of libio's tools, the same for every tool and documented in
// iotool(1). Scripts rely on them: never renumber.
#pragma once

namespace io::tools {

enum exit_code : int {
    exit_ok = 0,          ///< done; every check passed
    exit_failure = 1,     ///< the command ran and found a failure (a selftest line, no data, ...)
    exit_usage = 2,       ///< bad command line or value; nothing was touched
    exit_not_found = 3,   ///< no such card, line, port or serial port
    exit_permission = 4,  ///< the device is there but access was refused
    exit_io = 5,          ///< the device failed, is busy, or went away
};

}  // namespace io::tools
