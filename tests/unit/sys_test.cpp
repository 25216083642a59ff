// SPDX-License-Identifier: MIT
#include "sys.hpp"

#include <io/version.hpp>

#include <gtest/gtest.h>

#include <cerrno>
#include <fcntl.h>

namespace {

int eintr_left;
int calls;

ssize_t read_interrupted(int, void*, size_t n) {
    ++calls;
    if (eintr_left > 0) {
        --eintr_left;
        errno = EINTR;
        return -1;
    }
    return static_cast<ssize_t>(n);
}

TEST(sys, retry_eintr_repeats_until_the_call_completes) {
    eintr_left = 3;
    calls = 0;
    auto fake = io::detail::real_sys();
    fake.read = read_interrupted;
    io::detail::sys_override guard{fake};
    char buf[4];
    const auto n = io::detail::retry_eintr([&] { return io::detail::sys().read(0, buf, sizeof buf); });
    EXPECT_EQ(n, 4);
    EXPECT_EQ(calls, 4);
}

TEST(sys, retry_eintr_passes_other_errors_through) {
    auto fake = io::detail::real_sys();
    fake.read = [](int, void*, size_t) -> ssize_t {
        errno = EAGAIN;
        return -1;
    };
    io::detail::sys_override guard{fake};
    char c;
    EXPECT_EQ(io::detail::retry_eintr([&] { return io::detail::sys().read(0, &c, 1); }), -1);
    EXPECT_EQ(errno, EAGAIN);
}

TEST(sys, override_is_undone_at_scope_end) {
    {
        auto fake = io::detail::real_sys();
        fake.read = read_interrupted;
        io::detail::sys_override guard{fake};
        EXPECT_EQ(io::detail::sys().read, &read_interrupted);
    }
    EXPECT_EQ(io::detail::sys().read, io::detail::real_sys().read);
}

TEST(sys, real_calls_reach_the_kernel) {
    const int fd = io::detail::sys().open("/dev/null", O_RDONLY | O_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    char c;
    EXPECT_EQ(io::detail::sys().read(fd, &c, 1), 0);
    EXPECT_EQ(io::detail::sys().close(fd), 0);
    EXPECT_EQ(io::detail::sys().open("/nonexistent/libio", O_RDONLY, 0), -1);
    EXPECT_EQ(errno, ENOENT);
}

TEST(version, matches_the_project) {
    EXPECT_EQ(io::version(), LIBIO_TEST_VERSION);
}

}  // namespace
