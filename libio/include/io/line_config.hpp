// SPDX-License-Identifier: MIT
#pragma once

#include <io/export.hpp>

#include <chrono>
#include <string_view>

namespace io {

/// Direction of a digital line.
enum class direction { input, output };

/// Which changes of state of an input line produce edge events.
enum class edge { none, rising, falling, both };

/// Bias of a line, where the card offers it (most isolated I/O cards do not).
enum class bias { as_is, disabled, pull_up, pull_down };

/// Output drive, where the card offers it.
enum class drive { push_pull, open_drain, open_source };

/// How requested lines are configured: a plain, copyable value.
///
/// Levels are logical: with active_low set, true means the line is low.
struct line_config {
    direction dir = direction::input;
    edge edges = edge::none;                      ///< inputs only
    bias pull = bias::as_is;
    drive output_drive = drive::push_pull;        ///< outputs only
    bool active_low = false;
    std::chrono::microseconds debounce{0};        ///< inputs only; 0 is off
    bool initial = false;                         ///< outputs: level driven from the request on

    /// An input, with edge events as asked.
    static line_config input(edge e = edge::none) {
        line_config c;
        c.edges = e;
        return c;
    }
    /// An output starting at the given level.
    static line_config output(bool level = false) {
        line_config c;
        c.dir = direction::output;
        c.initial = level;
        return c;
    }
};

/// "input", "output", "rising", ... for messages and tools.
LIBIO_EXPORT std::string_view to_string(direction d) noexcept;
LIBIO_EXPORT std::string_view to_string(edge e) noexcept;
LIBIO_EXPORT std::string_view to_string(bias b) noexcept;
LIBIO_EXPORT std::string_view to_string(drive d) noexcept;

}  // namespace io
