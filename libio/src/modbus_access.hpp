// SPDX-License-Identifier: MIT
// What other parts of libio do to a modbus_module beyond its public API.
#pragma once

#include <io/modbus.hpp>

#include <string>

namespace io::detail {

struct modbus_access {
    /// Names the module as its configuration does (modbus_site): info().name
    /// and info().label.
    static void set_name(modbus_module& m, const std::string& name);
};

}  // namespace io::detail
