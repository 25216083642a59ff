// SPDX-License-Identifier: MIT
// What libio's own adapters (on_edge_events, on_card_events, on_serial_data)
// need of the loop beyond its public API.
#pragma once

#include <io/event_loop.hpp>

namespace io::detail {

struct event_loop_access {
    /// Whether the callback running now may be called again for the same
    /// wake-up: false once its registration has been removed (by that
    /// callback or one it called) or a stop() is pending. An adapter that
    /// hands out several results from one wake-up stops handing them out
    /// then, as the loop itself does between callbacks.
    static bool keep_calling(const event_loop& loop) noexcept;

    /// Takes the running registration's fd out of the loop (it failed for
    /// good and would wake the loop forever); the registration stays with
    /// its owner, and removing it later deletes nothing twice.
    static void unwatch_current(event_loop& loop) noexcept;

    /// Ties extra to main: removing main's registration removes extra's
    /// too. extra is released (it no longer removes anything itself).
    static void link(event_loop& loop, const registration& main, registration&& extra) noexcept;
};

}  // namespace io::detail
