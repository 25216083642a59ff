// SPDX-License-Identifier: MIT
// libio: industrial serial and digital I/O cards from C++. One include for all of it.
#pragma once

#include <io/card.hpp>
#include <io/card_monitor.hpp>
#include <io/chip.hpp>
#include <io/error.hpp>
#include <io/event_loop.hpp>
#include <io/line_config.hpp>
#include <io/line_request.hpp>
#include <io/modbus.hpp>
#include <io/modbus_config.hpp>
#include <io/rt.hpp>
#include <io/serial_port.hpp>
#include <io/serial_settings.hpp>
#include <io/version.hpp>
