// SPDX-License-Identifier: MIT
// A pipe with a byte in it: a descriptor that an event loop sees readable,
// for requests whose reads a fake kernel answers.
#pragma once

#include <cerrno>
#include <fcntl.h>
#include <system_error>
#include <unistd.h>

namespace io::test {

struct readable_fd {
    int r = -1, w = -1;
    readable_fd() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0)
            throw std::system_error(errno, std::system_category(), "pipe2");
        r = fds[0];
        w = fds[1];
        if (::write(w, "x", 1) != 1)
            throw std::system_error(errno, std::system_category(), "write");
    }
    ~readable_fd() {
        ::close(r);
        ::close(w);
    }
    readable_fd(const readable_fd&) = delete;
    readable_fd& operator=(const readable_fd&) = delete;
};

}  // namespace io::test
