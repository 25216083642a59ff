// SPDX-License-Identifier: MIT
#pragma once

#include <io/export.hpp>

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
namespace detail {
struct event_loop_access;
}

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
    friend struct detail::event_loop_access;
    registration(event_loop* loop, std::uint64_t id) noexcept : loop_{loop}, id_{id} {}
    event_loop* loop_ = nullptr;
    std::uint64_t id_ = 0;
};

/// A single-threaded event loop on epoll.
///
/// Callbacks run on the thread that calls run() or run_once(), one at a time.
/// A callback may add or remove registrations, including its own; a
/// registration removed while its event waits in the current batch is not
/// called. stop() is the one member that may be called from another thread.
/// The loop's own fd() lets it nest in another loop (it is readable when
/// work is pending).
///
/// The adapters that put libio's objects on a loop live beside them:
/// on_edge_events (io/line_request.hpp), on_card_events
/// (io/card_monitor.hpp), on_serial_data and on_modem_change
/// (io/serial_port.hpp).
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
    /// A stop() ends it after the callback running then (a stop before it
    /// makes it return 0 at once); either way that stop is used up.
    std::size_t run_once(std::chrono::milliseconds timeout);
    /// Same, reporting the wait's errors in ec instead of throwing. (An
    /// exception thrown by a callback passes through either; the loop stays
    /// usable.)
    std::size_t run_once(std::chrono::milliseconds timeout, std::error_code& ec);

    /// Runs callbacks until stop() is called.
    void run();

    /// Makes run() (or run_once()) return after the callback running now:
    /// no further callback starts, not the rest of the current batch, nor a
    /// timer due at the same time; their events stay pending for the next
    /// run. Callable from a callback, from any thread (it wakes the loop)
    /// and from signal handlers. A stop while the loop is not running makes
    /// the next run() return at once.
    void stop() noexcept;

    /// The epoll descriptor, for nesting this loop in another.
    int fd() const noexcept;

private:
    friend class registration;
    friend struct detail::event_loop_access;
    struct impl;
    void remove(std::uint64_t id) noexcept;
    std::unique_ptr<impl> impl_;
};

}  // namespace io
