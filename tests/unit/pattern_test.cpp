// SPDX-License-Identifier: MIT
#include "cable.hpp"

#include <gtest/gtest.h>

namespace {

// Reference bytes of the cable pattern, worked by hand from the xorshift32
// definition; tests/vm/cable.py must produce the same (checked natively in
// tests/native/cable_test.cpp).
TEST(pattern, known_bytes) {
    using v = std::vector<std::uint8_t>;
    EXPECT_EQ(io::test::pattern(1, 8), (v{33, 1, 197, 79, 209, 208, 26, 178}));
    EXPECT_EQ(io::test::pattern(0, 4), (v{25, 62, 58, 181}));
    EXPECT_EQ(io::test::pattern(0xdeadbeef, 4), (v{183, 66, 88, 59}));
}

TEST(pattern, seeds_differ_and_cover_every_byte_value) {
    const auto a = io::test::pattern(7, 4096);
    EXPECT_NE(a, io::test::pattern(8, 4096));
    std::array<int, 256> seen{};
    for (auto b : a)
        ++seen[b];
    for (int i = 0; i < 256; ++i)
        EXPECT_GT(seen[static_cast<std::size_t>(i)], 0) << "byte " << i;
}

}  // namespace
