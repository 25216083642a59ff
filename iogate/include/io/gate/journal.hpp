// SPDX-License-Identifier: MIT
#pragma once

#include <io/gate/payload.hpp>

#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

namespace io::gate {

/// Store and forward: the metrics a node could not publish (no broker, or
/// the primary host away), oldest first, at most `capacity` of them: when
/// full, the oldest is dropped and counted. With a path, the journal is
/// also a file (appended to, compacted now and then), so that a restart of
/// the daemon loses nothing below the bound; a file that is not a journal
/// is an error naming it.
class journal {
public:
    struct entry {
        std::string device_id;
        metric m;
    };

    /// `path` empty: memory only. Throws std::system_error, io::invalid_argument.
    journal(std::string path, std::size_t capacity);

    void push(const std::string& device_id, const std::vector<metric>& metrics);
    /// Removes and returns up to `n` of the oldest entries.
    std::vector<entry> take(std::size_t n);
    /// Copies of up to `n` of the oldest entries, left in the journal.
    std::vector<entry> peek(std::size_t n) const;
    /// Removes the `n` oldest entries (after they were published).
    void drop_front(std::size_t n);

    std::size_t size() const noexcept { return entries_.size(); }
    bool empty() const noexcept { return entries_.empty(); }
    std::size_t capacity() const noexcept { return capacity_; }
    /// Metrics dropped because the journal was full (kept in its file, so
    /// across restarts too).
    std::uint64_t dropped() const noexcept { return dropped_; }

private:
    void append_file(const std::string& device_id, const std::vector<metric>& metrics);
    void rewrite_file();
    void forget_front(std::size_t n);

    std::string path_;
    std::size_t capacity_;
    std::deque<entry> entries_;
    std::uint64_t dropped_ = 0;
    std::size_t stale_in_file_ = 0;  // metrics at the file's front that are no longer entries
};

}  // namespace io::gate
