// SPDX-License-Identifier: MIT
#pragma once

#include <io/event_loop.hpp>

#include <deque>
#include <functional>
#include <mutex>

namespace io::gate {

/// Hands work from other threads to an event loop: post() queues a function
/// from any thread, and the loop runs the queued functions in the order
/// they came, woken by an eventfd it watches. The one way iogate's threads
/// (the MQTT network thread, a Modbus device's request thread, a serial
/// port's modem line waiter) report to the loop.
///
/// Destroy it on the loop's thread, after the threads that post to it have
/// stopped; functions still queued then are dropped, not run.
class loop_mailbox final {
public:
    /// `what` names the mailbox's owner in the error of a failed eventfd.
    /// \throws std::system_error when no eventfd can be made.
    loop_mailbox(event_loop& loop, const char* what);
    ~loop_mailbox();
    loop_mailbox(const loop_mailbox&) = delete;
    loop_mailbox& operator=(const loop_mailbox&) = delete;

    /// Queues f to run on the loop; any thread, never blocks on the loop.
    void post(std::function<void()> f);

private:
    void deliver();

    int efd_ = -1;
    registration watch_;
    std::mutex mutex_;
    std::deque<std::function<void()>> queue_;
};

}  // namespace io::gate
