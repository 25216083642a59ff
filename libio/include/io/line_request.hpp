// SPDX-License-Identifier: MIT
#pragma once

#include <io/event_loop.hpp>
#include <io/export.hpp>
#include <io/line_config.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace io {

struct port;
namespace detail {
struct line_request_access;
}

/// One change of state on an input line, as the kernel timestamped it.
struct edge_event {
    unsigned line;               ///< offset of the line on its chip
    edge kind;                   ///< edge::rising or edge::falling
    std::uint64_t timestamp_ns;  ///< CLOCK_MONOTONIC, taken in the interrupt
    std::uint64_t seqno;         ///< position among all events of the request, from 1
    std::uint64_t line_seqno;    ///< position among the events of this line, from 1
};

/// Lines held from the kernel: read, drive and watch them. Move-only; the
/// lines are released when it is destroyed or release()d, and outputs keep
/// the level last driven.
///
/// Values are logical (active_low inverts). Calls on a released request
/// throw io::usage_error. When the card goes away the calls fail with a
/// "device removed" error (io::is_device_removed()).
class LIBIO_EXPORT line_request final {
public:
    ~line_request();
    line_request(line_request&&) noexcept;
    line_request& operator=(line_request&&) noexcept;
    line_request(const line_request&) = delete;
    line_request& operator=(const line_request&) = delete;

    /// The request's file descriptor: readable when edge events are queued.
    int fd() const noexcept { return fd_; }
    /// The requested offsets, in request order.
    std::span<const unsigned> offsets() const noexcept { return offsets_; }
    /// The chip the lines are on ("/dev/gpiochip3").
    const std::string& chip_path() const noexcept { return chip_path_; }

    bool get(unsigned offset) const;
    bool get(unsigned offset, std::error_code& ec) const noexcept;
    void set(unsigned offset, bool value);
    void set(unsigned offset, bool value, std::error_code& ec) noexcept;

    /// Reads the given lines in one kernel call; bit i of the result is
    /// lines[i]. At most 64 lines, all of them in this request.
    std::uint64_t get_bits(std::span<const unsigned> lines) const;
    std::uint64_t get_bits(std::span<const unsigned> lines, std::error_code& ec) const noexcept;
    /// Drives the given lines in one kernel call from bits (bit i: lines[i]).
    void set_bits(std::span<const unsigned> lines, std::uint64_t bits);
    void set_bits(std::span<const unsigned> lines, std::uint64_t bits, std::error_code& ec) noexcept;

    /// A whole port as one integer, in one register access on iocard cards.
    std::uint64_t read_port(const port& p) const;
    void write_port(const port& p, std::uint64_t value);

    /// Waits until edge events are queued or the timeout passes; true if
    /// events are ready. A negative timeout waits forever.
    bool wait_edge_events(std::chrono::nanoseconds timeout) const;
    bool wait_edge_events(std::chrono::nanoseconds timeout, std::error_code& ec) const noexcept;

    /// Reads queued edge events into out without blocking and without
    /// allocating; returns how many were stored (0 if none are queued).
    /// Events the kernel dropped because its queue was full are found from
    /// the sequence numbers and counted in lost_events().
    ///
    /// Waiting also takes in the changes an iocard card saw but could not
    /// deliver (several changes of a line between two reads of the card, or
    /// while its previous event was still being delivered; the card counts
    /// them in sysfs, "lost"): they count in lost_events() too, with no
    /// extra system call per event.
    std::size_t read_edge_events(std::span<edge_event> out);
    std::size_t read_edge_events(std::span<edge_event> out, std::error_code& ec) noexcept;

    /// Changes of state the request's lines had that became no event, since
    /// the request was made: events the kernel dropped (queue overflow), as
    /// seen by the events read so far, and changes the card counted as not
    /// delivered, as last reported (every wait_edge_events() and
    /// on_edge_events() takes the card's count in when it changes). After the
    /// lines are quiet, events read plus lost_events() is every change the
    /// card saw that the lines' edge settings ask for.
    ///
    /// The kernel numbers a request's events when their interrupts come and
    /// queues them when their threads run, so two lines' events can be read
    /// in the other order than numbered: the later-numbered one read first
    /// counts the other as lost until it is read (then the count goes down
    /// by one). Numbers go on past the kernel's 32 bits.
    std::uint64_t lost_events() const noexcept { return max_seqno_ - received_ + card_lost_; }

    /// Gives the lines back to the kernel now; outputs keep their level.
    void release() noexcept;
    bool released() const noexcept { return fd_ < 0; }

private:
    friend class request_builder;
    friend struct detail::line_request_access;
    line_request(int fd, std::string chip_path, std::vector<unsigned> offsets);
    std::uint64_t mask_of(std::span<const unsigned> lines, const char* what) const;
    void check_usable(const char* what) const;
    [[noreturn, gnu::cold, gnu::visibility("hidden")]] void throw_bits_error(std::span<const unsigned> lines, int err, const char* what) const;
    [[noreturn, gnu::cold, gnu::visibility("hidden")]] void throw_port_value_error(const port& p, std::uint64_t value) const;

    int fd_ = -1;
    std::string chip_path_;
    std::vector<unsigned> offsets_;
    std::array<std::uint8_t, 256> index_{};  // offset -> position in offsets_, 0xff if absent
    // For each position, how many positions from it on hold consecutive
    // offsets (k, k+1, ...): a port of such lines maps by one shift.
    std::array<std::uint8_t, 64> run_{};
    /// Takes in the card's count of changes not delivered (its sysfs
    /// attribute "lost", open as lost_fd_); false if it cannot be read any
    /// more (the card is gone), and then stops watching it.
    bool take_card_lost() const noexcept;
    void open_card_lost();

    // The highest sequence number read (unwrapped to 64 bits) and how many
    // events were read: the difference is what the kernel dropped.
    std::uint64_t max_seqno_ = 0;
    std::uint64_t received_ = 0;
    std::vector<std::uint64_t> line_seqno_;  // by position: the last line_seqno read, unwrapped
    // The card's per-line counts of changes not delivered: its sysfs
    // attribute, polled for POLLPRI; what of it this request took in.
    mutable int lost_fd_ = -1;
    mutable std::uint64_t card_lost_ = 0;
    mutable std::vector<std::uint64_t> card_lost_seen_;  // by position in offsets_
};

/// Calls cb from the loop with each batch of edge events of the request,
/// read into a buffer of `batch` events made once here (no allocation per
/// event). Events the kernel dropped show in request.lost_events(), which cb
/// may read; when the card reports changes it could not deliver, cb is
/// called with no events and no error, and lost_events() has grown. When reading fails (for example the card was removed), cb gets
/// the error with no events, once: the request is not watched any more.
/// Once cb removes the registration or stops the loop, it is not called
/// again for the same wake-up. The request must outlive the registration;
/// releasing it inside cb is allowed (remove the registration too).
LIBIO_EXPORT registration on_edge_events(event_loop& loop, line_request& request,
                                         std::function<void(std::span<const edge_event>, std::error_code)> cb,
                                         std::size_t batch = 64);

}  // namespace io
