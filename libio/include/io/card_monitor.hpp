// SPDX-License-Identifier: MIT
#pragma once

#include <io/card.hpp>
#include <io/event_loop.hpp>
#include <io/export.hpp>

#include <functional>
#include <memory>
#include <span>
#include <system_error>
#include <vector>

namespace io {

/// A card arriving or leaving.
struct card_event {
    enum class kind { added, removed };
    kind change;
    card_info card;  ///< for removed cards, as it was last seen
};

/// Watches cards arrive and leave (udev). It starts listening before it
/// takes its first inventory, so no card slips between the two: cards()
/// right after construction is complete, and every later change comes
/// from read_events(). Move-only; one thread.
class LIBIO_EXPORT card_monitor final {
public:
    /// Throws std::system_error if the udev monitor cannot be set up.
    card_monitor();
    ~card_monitor();
    card_monitor(card_monitor&&) noexcept;
    card_monitor& operator=(card_monitor&&) noexcept;
    card_monitor(const card_monitor&) = delete;
    card_monitor& operator=(const card_monitor&) = delete;

    /// Readable when events are pending; for event loops.
    int fd() const noexcept;

    /// The cards as last seen.
    const std::vector<card_info>& cards() const noexcept;

    /// Takes the pending udev events without blocking and returns the card
    /// changes they mean. If the kernel dropped events (the monitor's
    /// buffer overflowed), the inventory is taken afresh and the changes
    /// found by comparison; resyncs() counts how often that happened.
    std::vector<card_event> read_events();
    std::vector<card_event> read_events(std::error_code& ec);

    /// How many times events were lost and the inventory retaken.
    unsigned resyncs() const noexcept;

    /// Sets the size of the monitor's kernel receive buffer (bytes).
    void set_receive_buffer_size(int bytes);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// Calls cb from the loop with the cards that arrived or left, in the order
/// read_events() gives them (a batch per wake-up, never empty). Errors
/// reading udev reach cb as an error code with no changes, after the
/// changes read before the error (unless cb removed the registration or
/// stopped the loop meanwhile). The monitor must outlive the registration.
LIBIO_EXPORT registration on_card_events(event_loop& loop, card_monitor& monitor,
                                         std::function<void(std::span<const card_event>, std::error_code)> cb);

}  // namespace io
