// SPDX-License-Identifier: MIT
// Timeouts checked exactly, whatever the machine's load: every wait libio
// asks of the kernel (ppoll through the system-call seam) is recorded with
// the moment it was asked and its limit, and so is every read that returned
// data. A test then checks that no wait reached past the deadline libio had
// to keep, instead of timing the call against a tolerance:
//
//   io::test::wait_log log;                  // records while it lives
//   port.read(buf, {.total = 100ms});
//   EXPECT_TRUE(log.waits_end_by(100ms)) << log;
#pragma once

#include "sys.hpp"

#include <chrono>
#include <optional>
#include <ostream>
#include <vector>

namespace io::test {

class wait_log final {
public:
    using clock = std::chrono::steady_clock;
    struct wait {
        /// No later than the moment libio read the clock to work out this
        /// wait's limit: the return of its previous system call that we
        /// saw (or the log's start). Bounds the wait's end from above
        /// however long the thread was preempted in between.
        clock::time_point since;
        clock::time_point asked;                    ///< when libio called ppoll
        std::optional<clock::duration> limit;       ///< its timeout; nullopt: none
        int result;                                 ///< what ppoll returned (0: timed out)
    };

    wait_log() : saved_{detail::sys()}, mark_{clock::now()} {
        current() = this;
        auto calls = saved_;
        calls.ppoll = &logged_ppoll;
        calls.read = &logged_read;
        detail::sys() = calls;
    }
    ~wait_log() {
        detail::sys() = saved_;
        current() = nullptr;
    }
    wait_log(const wait_log&) = delete;
    wait_log& operator=(const wait_log&) = delete;

    const std::vector<wait>& waits() const noexcept { return waits_; }
    /// When the last read that returned data returned (libio saw the data
    /// no earlier than this).
    std::optional<clock::time_point> last_data() const noexcept { return last_data_; }

    /// Every wait ended by the deadline `total` after the call began (a
    /// poll with a zero limit waits for nothing and may come at any time). The
    /// call began before its first wait was asked, so first-asked + total is
    /// no earlier than libio's deadline: a wait past it is a wait too long.
    bool waits_end_by(clock::duration total) const { return !waits_.empty() && ends_by(waits_.front().asked + total, 0); }

    /// Every wait asked after the last read that returned data ended by
    /// `gap` after that read was seen (libio noted the byte before its next
    /// wait, so the first wait asked after it bounds its inter-byte deadline).
    bool waits_after_last_data_end_by(clock::duration gap) const {
        std::size_t first = 0;
        for (std::size_t i = 0; i < waits_.size(); ++i)
            if (last_data_ && waits_[i].asked >= *last_data_) {
                first = i;
                break;
            }
        return first < waits_.size() && ends_by(waits_[first].asked + gap, first);
    }

    /// No wait timed out: the call returned on data (or room) alone.
    bool none_timed_out() const {
        for (const auto& w : waits_)
            if (w.result == 0)
                return false;
        return true;
    }

    friend std::ostream& operator<<(std::ostream& o, const wait_log& l) {
        o << l.waits_.size() << " wait(s):";
        for (const auto& w : l.waits_) {
            o << " [+" << std::chrono::duration_cast<std::chrono::microseconds>(w.asked - l.waits_.front().asked).count()
              << " us, limit ";
            if (w.limit)
                o << std::chrono::duration_cast<std::chrono::microseconds>(*w.limit).count() << " us";
            else
                o << "none";
            o << ", returned " << w.result << "]";
        }
        return o;
    }

private:
    bool ends_by(clock::time_point deadline, std::size_t from) const {
        for (std::size_t i = from; i < waits_.size(); ++i) {
            const auto& w = waits_[i];
            // A zero limit only looks (libio checks once more at or after its
            // deadline): it waits for nothing, whenever it is asked.
            if (!w.limit || (w.limit->count() != 0 && w.since + *w.limit > deadline))
                return false;
        }
        return true;
    }

    static wait_log*& current() {
        static wait_log* log = nullptr;
        return log;
    }
    static int logged_ppoll(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask) {
        auto* self = current();
        wait w{self->mark_, clock::now(), std::nullopt, 0};
        if (timeout != nullptr)
            w.limit = std::chrono::seconds{timeout->tv_sec} + std::chrono::nanoseconds{timeout->tv_nsec};
        w.result = self->saved_.ppoll(fds, n, timeout, mask);
        const int err = errno;
        self->mark_ = clock::now();
        self->waits_.push_back(w);
        errno = err;
        return w.result;
    }
    static ssize_t logged_read(int fd, void* buf, size_t n) {
        auto* self = current();
        const auto r = self->saved_.read(fd, buf, n);
        const int err = errno;
        self->mark_ = clock::now();
        if (r > 0)
            self->last_data_ = self->mark_;
        errno = err;
        return r;
    }

    detail::sys_calls saved_;
    std::vector<wait> waits_;
    std::optional<clock::time_point> last_data_;
    clock::time_point mark_;  // the last return of a call we saw
};

}  // namespace io::test
