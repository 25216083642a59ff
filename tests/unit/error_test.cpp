// SPDX-License-Identifier: MIT
#include "error.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

namespace {

std::system_error caught(int err, std::string_view context) {
    try {
        io::detail::throw_errno(err, context);
    } catch (const std::system_error& e) {
        return e;
    }
    ADD_FAILURE() << "throw_errno returned";
    return std::system_error{};
}

TEST(error, carries_errno_and_context) {
    const auto e = caught(EACCES, "open /dev/gpiochip3");
    EXPECT_EQ(e.code(), std::error_code(EACCES, std::system_category()));
    EXPECT_EQ(std::string(e.what()), "open /dev/gpiochip3: Permission denied");
}

TEST(error, names_a_removed_device) {
    for (const int err : {ENODEV, ENXIO, ESHUTDOWN, EIO}) {
        const auto e = caught(err, "read /dev/ttyUSB0");
        EXPECT_EQ(e.code().value(), err);
        EXPECT_TRUE(io::is_device_removed(e.code()));
        EXPECT_EQ(std::string(e.what()).rfind("read /dev/ttyUSB0: device removed: ", 0), 0U) << e.what();
    }
}

TEST(error, ordinary_errors_are_not_removal) {
    for (const int err : {EAGAIN, EINVAL, EBUSY, EPERM, ETIMEDOUT})
        EXPECT_FALSE(io::is_device_removed(io::detail::errno_code(err))) << err;
    EXPECT_FALSE(io::is_device_removed(std::make_error_code(std::errc::no_such_device)))
        << "only system-category codes come from the kernel";
}

TEST(error, usage_error_is_a_logic_error) {
    const io::usage_error e{"request released"};
    const std::logic_error& base = e;
    EXPECT_STREQ(base.what(), "request released");
}

}  // namespace
