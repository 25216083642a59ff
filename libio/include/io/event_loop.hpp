// SPDX-License-Identifier: MIT
#pragma once

#include <io/export.hpp>
#include <io/line_config.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <system_error>

namespace io {

/// What a file descriptor is watched for; combine with |.
enum class ready : std::uint32_t {
    in = 0x001,   ///< data to read (EPOLLIN)
    out = 0x004,  ///< room to write (EPOLLOUT)
    pri = 0x002,  ///< exceptional condition (EPOLLPRI)
};
constexpr ready operator|(ready a, ready b) noexcept {
    return static_cast<ready>(static_cast<std::uint32_t>(a) | static_cast<std::uint32_t>(b));
}

/// What happened to a watched file descriptor, as handed to its callback.
struct readiness {
    std::uint32_t events;  ///< epoll event bits
    bool readable() const noexcept { return (events & 0x001U) != 0; }
    bool writable() const noexcept { return (events & 0x004U) != 0; }
    /// The other end hung up or the device went away (EPOLLHUP, EPOLLERR).
    bool hangup() const noexcept { return (events & (0x010U | 0x008U)) != 0; }
};

class event_loop;
class line_request;
class card_monitor;
struct card_event;
class serial_port;
struct modem_lines;

/// Keeps a watch or timer registered; destroying or reset()ting it removes
/// the registration. Move-only. It must not outlive its loop.
class LIBIO_EXPORT registration final {
public:
    registration() noexcept = default;
    ~registration();
    registration(registration&& o) noexcept;
    registration& operator=(registration&& o) noexcept;
    registration(const registration&) = delete;
    registration& operator=(const registration&) = delete;

    /// Removes the registration now; a callback of it never runs afterwards.
    void reset() noexcept;
    explicit operator bool() const noexcept { return loop_ != nullptr; }

private:
    friend class event_loop;
    registration(event_loop* loop, std::uint64_t id) noexcept : loop_{loop}, id_{id} {}
    event_loop* loop_ = nullptr;
    std::uint64_t id_ = 0;
};

/// A single-threaded event loop on epoll.
///
/// Callbacks run on the thread that calls run() or run_once(), one at a time.
/// A callback may add or remove registrations, including its own. stop() is
/// the one member that may be called from another thread. The loop's own
/// fd() lets it nest in another loop (it is readable when work is pending).
class LIBIO_EXPORT event_loop final {
public:
    using clock = std::chrono::steady_clock;
    using fd_callback = std::function<void(readiness)>;
    using timer_callback = std::function<void()>;

    /// Throws std::system_error if epoll, eventfd or timerfd cannot be created.
    event_loop();
    ~event_loop();
    event_loop(const event_loop&) = delete;
    event_loop& operator=(const event_loop&) = delete;
    event_loop(event_loop&&) = delete;
    event_loop& operator=(event_loop&&) = delete;

    /// Calls cb whenever fd is ready for what is asked (level-triggered).
    /// The fd stays owned by the caller and must outlive the registration.
    /// Throws std::system_error (EEXIST if fd is already watched by this loop).
    [[nodiscard]] registration watch(int fd, ready what, fd_callback cb);

    /// Calls cb once, `after` from now.
    [[nodiscard]] registration call_after(clock::duration after, timer_callback cb);

    /// Calls cb every `period`, the first time one period from now. Deadlines
    /// are absolute (no drift); when the loop falls behind, missed ticks are
    /// not replayed.
    [[nodiscard]] registration call_every(clock::duration period, timer_callback cb);
    /// Same, with the deadlines at first + k * period: phase-aligned ticks
    /// (several loops on one time base, a cycle aligned to a wall-clock
    /// second). A first deadline already passed fires at once, and the ticks
    /// keep their phase.
    [[nodiscard]] registration call_every(clock::duration period, clock::time_point first, timer_callback cb);

    /// Waits up to timeout for events and runs their callbacks; returns how
    /// many callbacks ran (0 on timeout). A negative timeout waits forever.
    std::size_t run_once(std::chrono::milliseconds timeout);
    /// Same, reporting errors in ec instead of throwing.
    std::size_t run_once(std::chrono::milliseconds timeout, std::error_code& ec) noexcept;

    /// Runs callbacks until stop() is called.
    void run();

    /// Makes run() return after the callback running now; callable from any
    /// thread and from signal handlers. A stop before run() makes the next
    /// run() return at once.
    void stop() noexcept;

    /// The epoll descriptor, for nesting this loop in another.
    int fd() const noexcept;

private:
    friend class registration;
    struct impl;
    void remove(std::uint64_t id) noexcept;
    std::unique_ptr<impl> impl_;
};

/// Calls cb from the loop with each batch of edge events of the request,
/// read into a buffer of `batch` events made once here (no allocation per
/// event). When reading fails (for example the card was removed), cb gets
/// the error with no events, once: the request is not watched any more.
/// The request must outlive the registration.
LIBIO_EXPORT registration on_edge_events(event_loop& loop, line_request& request,
                                         std::function<void(std::span<const edge_event>, std::error_code)> cb,
                                         std::size_t batch = 64);

/// Calls cb from the loop for each card that arrives or leaves. Errors
/// reading udev reach cb as an error code with no event.
/// The monitor must outlive the registration.
LIBIO_EXPORT registration on_card_events(event_loop& loop, card_monitor& monitor,
                                         std::function<void(const card_event*, std::error_code)> cb);

/// Calls cb from the loop whenever the port has received data (read it in
/// cb with read_some(); data left unread calls again). When the port fails
/// (device removed), cb gets the error once and the port is not watched
/// any more. The port must outlive the registration.
LIBIO_EXPORT registration on_serial_data(event_loop& loop, serial_port& port, std::function<void(std::error_code)> cb);

/// Calls cb from the loop when the port's modem lines change. The kernel's
/// TIOCMIWAIT blocks and cannot be polled, so the lines are sampled every
/// `period` (a change shorter than the period may be missed; use
/// serial_port::wait_modem_change in a thread of its own to see every one).
/// Errors reach cb once, with the last known lines, and sampling stops.
LIBIO_EXPORT registration on_modem_change(event_loop& loop, serial_port& port, std::chrono::milliseconds period,
                                          std::function<void(const modem_lines&, std::error_code)> cb);

}  // namespace io
