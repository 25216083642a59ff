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
    /// The card's "lost" attribute of the request (-1 if none), for the loop adapter.
    static int card_lost_fd(const line_request& r) noexcept { return r.lost_fd_; }
    static bool take_card_lost(const line_request& r) noexcept { return r.take_card_lost(); }
    /// After a request is made: watch its card's count (iocard cards only).
    static void open_card_lost(line_request& r) { r.open_card_lost(); }
    /// For tests: fd stands for the card's attribute "lost" (a file that
    /// pread() reads), taken in at once as after a request.
    static void attach_card_lost(line_request& r, int fd) {
        r.lost_fd_ = fd;
        r.card_lost_seen_.assign(r.offsets_.size(), 0);
        (void)r.take_card_lost();
    }
};

}  // namespace io::detail
