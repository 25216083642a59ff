// SPDX-License-Identifier: MIT
// The file: a header "IOGJ", a u32 LE count of the metrics at its front that
// are no longer wanted (taken or dropped) and a u32 LE count of the metrics
// dropped for want of room (both updated in place), then records
// of [u32 LE length][u8 id length][id][Sparkplug payload of the device's
// metrics] appended as data arrives. It is rewritten from memory (compacted)
// once the unwanted metrics outnumber the bound, or nothing is left.
#include <io/gate/journal.hpp>

#include <io/error.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <system_error>
#include <unistd.h>

namespace io::gate {

namespace {

constexpr std::string_view magic = "IOGJ";
constexpr std::size_t header_size = 12;

std::string le32(std::uint32_t v) {
    std::string r;
    for (int i = 0; i < 4; ++i)
        r += static_cast<char>((v >> (8 * i)) & 0xffU);
    return r;
}

std::uint32_t read_le32(const std::string& s, std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t b = 0; b < 4; ++b)
        v |= std::uint32_t{static_cast<unsigned char>(s[at + b])} << (8 * b);
    return v;
}

std::string record(const std::string& device_id, const std::vector<metric>& metrics) {
    payload p;
    p.metrics = metrics;
    const std::string body = encode(p);
    std::string r = le32(static_cast<std::uint32_t>(1 + device_id.size() + body.size()));
    r += static_cast<char>(device_id.size());
    r += device_id;
    r += body;
    return r;
}

void write_all(int fd, const std::string& data, const std::string& path) {
    std::size_t done = 0;
    while (done < data.size()) {
        const auto n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw std::system_error(errno, std::generic_category(), "write journal " + path);
        }
        done += static_cast<std::size_t>(n);
    }
}

}  // namespace

journal::journal(std::string path, std::size_t capacity) : path_{std::move(path)}, capacity_{capacity} {
    if (capacity_ == 0)
        throw io::invalid_argument("journal capacity 0; at least 1 metric");
    if (path_.empty())
        return;
    std::ifstream in(path_, std::ios::binary);
    if (!in) {
        if (errno != ENOENT)
            throw std::system_error(errno, std::generic_category(), "read journal " + path_);
        rewrite_file();  // a new, empty journal
        return;
    }
    std::ostringstream all;
    all << in.rdbuf();
    const std::string data = all.str();
    const auto bad = [&](const std::string& what) {
        return io::invalid_argument("journal " + path_ + " " + what + "; remove it to start an empty journal");
    };
    if (data.size() < header_size || std::string_view{data}.substr(0, 4) != magic)
        throw bad("is not an iogate journal (no IOGJ header)");
    std::size_t skip = read_le32(data, 4);
    dropped_ = read_le32(data, 8);
    std::size_t i = header_size;
    while (i < data.size()) {
        // A last record cut short is an append the system did not finish
        // (power loss, a full disk): the records before it are kept, it is
        // not (appends are not fsync'ed; see iogate(8), [store]).
        if (data.size() - i < 5)
            break;
        const std::uint32_t len = read_le32(data, i);
        const std::size_t id_len = static_cast<unsigned char>(data[i + 4]);
        if (len >= 1 + id_len && len > data.size() - i - 4)
            break;
        if (len < 1 + id_len)
            throw bad("has a bad record at byte " + std::to_string(i));
        const std::string id = data.substr(i + 5, id_len);
        payload p;
        try {
            p = decode(std::string_view{data}.substr(i + 5 + id_len, len - 1 - id_len));
        } catch (const decode_error&) {
            throw bad("has a record that does not decode at byte " + std::to_string(i));
        }
        for (auto& m : p.metrics) {
            if (skip > 0)
                --skip;  // taken or dropped before
            else
                entries_.push_back({id, std::move(m)});
        }
        i += 4 + len;
    }
    while (entries_.size() > capacity_) {
        entries_.pop_front();
        ++dropped_;
    }
    rewrite_file();
}

void journal::push(const std::string& device_id, const std::vector<metric>& metrics) {
    if (device_id.size() > 255)
        throw io::invalid_argument("journal: device ID longer than 255 bytes");
    for (const auto& m : metrics)
        entries_.push_back({device_id, m});
    std::size_t over = 0;
    while (entries_.size() > capacity_) {
        entries_.pop_front();
        ++dropped_;
        ++over;
    }
    if (path_.empty())
        return;
    append_file(device_id, metrics);
    if (over > 0)
        forget_front(over);
}

std::vector<journal::entry> journal::take(std::size_t n) {
    auto out = peek(n);
    drop_front(out.size());
    return out;
}

std::vector<journal::entry> journal::peek(std::size_t n) const {
    const auto count = std::min(n, entries_.size());
    return {entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(count)};
}

void journal::drop_front(std::size_t n) {
    n = std::min(n, entries_.size());
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(n));
    if (!path_.empty() && n > 0)
        forget_front(n);
}

void journal::forget_front(std::size_t n) {
    stale_in_file_ += n;
    if (entries_.empty() || stale_in_file_ > capacity_) {
        rewrite_file();
        return;
    }
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        throw std::system_error(errno, std::generic_category(), "open journal " + path_);
    const std::string count = le32(static_cast<std::uint32_t>(stale_in_file_)) +
                              le32(static_cast<std::uint32_t>(dropped_));
    const auto w = ::pwrite(fd, count.data(), count.size(), 4);
    const int err = errno;
    ::close(fd);
    if (w != static_cast<ssize_t>(count.size()))
        throw std::system_error(err, std::generic_category(), "write journal " + path_);
}

void journal::append_file(const std::string& device_id, const std::vector<metric>& metrics) {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        throw std::system_error(errno, std::generic_category(), "open journal " + path_);
    try {
        write_all(fd, record(device_id, metrics), path_);
    } catch (...) {
        ::close(fd);
        throw;
    }
    ::close(fd);
}

void journal::rewrite_file() {
    std::string data{magic};
    data += le32(0);
    data += le32(static_cast<std::uint32_t>(dropped_));
    for (const auto& e : entries_)
        data += record(e.device_id, {e.m});
    const std::string tmp = path_ + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        throw std::system_error(errno, std::generic_category(), "write journal " + tmp);
    try {
        write_all(fd, data, tmp);
        // On disk before it replaces the journal: a power loss leaves the
        // old file or the new one, never an empty one.
        if (::fsync(fd) != 0)
            throw std::system_error(errno, std::generic_category(), "fsync journal " + tmp);
    } catch (...) {
        ::close(fd);
        throw;
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path_.c_str()) != 0)
        throw std::system_error(errno, std::generic_category(), "rename " + tmp + " to " + path_);
    stale_in_file_ = 0;
}

}  // namespace io::gate
