// SPDX-License-Identifier: MIT
// The guest's side of the test VM's cables: orders to the host agent
// (tests/vm/cable.py) that holds the far end of every emulated serial port.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace io::test {

/// The byte stream both ends agree on: xorshift32 (13, 17, 5) from seed (0
/// means 0x9e3779b9), one byte per step, the state's low byte.
inline std::vector<std::uint8_t> pattern(std::uint32_t seed, std::size_t n) {
    std::uint32_t x = seed != 0 ? seed : 0x9e3779b9U;
    std::vector<std::uint8_t> out(n);
    for (auto& b : out) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b = static_cast<std::uint8_t>(x & 0xffU);
    }
    return out;
}

/// A connection to the cable agent. post() sends an order, answer() waits for
/// its reply: between the two the caller moves the data the order is about.
class cable final {
public:
    static constexpr const char* default_path = "/dev/virtio-ports/io.libio.cable";

    explicit cable(const char* path = default_path) : fd_{::open(path, O_RDWR | O_CLOEXEC | O_NOCTTY)} {
        if (fd_ < 0)
            throw std::system_error(errno, std::system_category(), std::string("open ") + path);
    }
    /// Takes ownership of a connected fd.
    explicit cable(int fd) noexcept : fd_{fd} {}
    ~cable() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    cable(const cable&) = delete;
    cable& operator=(const cable&) = delete;

    void post(std::string_view order) {
        std::string line{order};
        line += '\n';
        std::size_t done = 0;
        while (done < line.size()) {
            const auto n = ::write(fd_, line.data() + done, line.size() - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                throw std::system_error(errno, std::system_category(), "write to the cable agent");
            done += static_cast<std::size_t>(n);
        }
    }

    /// The agent's reply to the last order, without the newline.
    std::string answer() {
        std::string line;
        for (;;) {
            char c;
            const auto n = ::read(fd_, &c, 1);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                throw std::system_error(errno, std::system_category(), "read from the cable agent");
            if (n == 0)
                throw std::runtime_error("the cable agent hung up");
            if (c == '\n')
                return line;
            line += c;
        }
    }

    std::string order(std::string_view o) {
        post(o);
        return answer();
    }

private:
    int fd_;
};

}  // namespace io::test
