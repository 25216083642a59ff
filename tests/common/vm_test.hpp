// SPDX-License-Identifier: MIT
// Base fixture of the tests that run inside the test VM: a test fails when
// the kernel logs an oops, BUG, WARNING, lockup or panic while it runs.
#pragma once

#include <gtest/gtest.h>

#include <cerrno>
#include <fcntl.h>
#include <regex>
#include <string>
#include <unistd.h>

namespace io::test {

/// Reads /dev/kmsg from where it was last left and keeps the bad records.
class kmsg_reader final {
public:
    kmsg_reader() : fd_{::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)} {
        if (fd_ >= 0)
            ::lseek(fd_, 0, SEEK_END);
    }
    ~kmsg_reader() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    kmsg_reader(const kmsg_reader&) = delete;
    kmsg_reader& operator=(const kmsg_reader&) = delete;

    bool ok() const noexcept { return fd_ >= 0; }

    /// The records logged since the last call that report a kernel fault.
    std::string bad_records() {
        static const std::regex fault{
            "Oops|BUG: |kernel BUG at|WARNING: |general protection fault|soft lockup|hard LOCKUP|"
            "detected stall|blocked for more than|Kernel panic|UBSAN: |KASAN: |"
            "list_(add|del) corruption|refcount_t: "};
        std::string bad;
        char rec[8192];
        for (;;) {
            const auto n = ::read(fd_, rec, sizeof rec - 1);
            if (n < 0 && errno == EPIPE)
                continue;  // the ring overwrote records before we read them
            if (n <= 0)
                return bad;
            const std::string line(rec, static_cast<std::size_t>(n));
            if (std::regex_search(line, fault))
                bad += "  " + line.substr(line.find(';') + 1);
        }
    }

private:
    int fd_;
};

class vm_test : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(kmsg_.ok()) << "cannot read /dev/kmsg: VM tests run as root in the test VM";
        (void)kmsg_.bad_records();
    }
    void TearDown() override {
        const auto bad = kmsg_.bad_records();
        EXPECT_TRUE(bad.empty()) << "the kernel reported a fault during this test:\n" << bad;
    }

private:
    kmsg_reader kmsg_;
};

}  // namespace io::test
