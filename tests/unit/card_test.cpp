// SPDX-License-Identifier: MIT
#include <io/card.hpp>
#include <io/chip.hpp>
#include <io/error.hpp>

#include <gtest/gtest.h>

namespace {

TEST(port_layout, parses_what_iocard_and_the_hwdb_write) {
    const auto p = io::parse_port_layout("A:8:io B:8:in CL:4:out\n");
    ASSERT_EQ(p.size(), 3U);
    EXPECT_EQ(p[0].name, "A");
    EXPECT_EQ(p[0].width, 8U);
    EXPECT_TRUE(p[0].input && p[0].output);
    EXPECT_TRUE(p[1].input && !p[1].output);
    EXPECT_TRUE(!p[2].input && p[2].output);
    EXPECT_TRUE(io::parse_port_layout("").empty());
}

TEST(port_layout, refuses_malformed_items_naming_them) {
    for (const char* bad : {"A:8", "A:x:io", ":8:io", "A:0:io", "A:65:io", "A:8:sideways"}) {
        try {
            (void)io::parse_port_layout(bad);
            ADD_FAILURE() << bad << " was accepted";
        } catch (const io::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find("port layout item"), std::string::npos) << e.what();
        }
    }
}

std::vector<io::card_info> sample() {
    io::card_info a;
    a.name = "iocard0";
    a.model = "dio120";
    a.location = "sim-0";
    a.label = "bench";
    a.gpiochip = "/dev/gpiochip0";
    a.index = 0;
    io::card_info b = a;
    b.name = "iocard1";
    b.location = "sim-1";
    b.label = "iocard1";
    b.gpiochip = "/dev/gpiochip1";
    b.index = 1;
    io::card_info s;
    s.name = "ttyS4";
    s.model = "qemu-pci-serial-4x";
    s.location = "pci-0000:00:05.0";
    s.label = "ttyS4";
    s.serial_ports = {{"/dev/ttyS4", 0, "rs232"}, {"/dev/ttyS5", 1, "rs232"}};
    return {a, b, s};
}

TEST(find_card, by_every_key) {
    const auto cards = sample();
    EXPECT_EQ(io::find_card("bench", cards).name, "iocard0");
    EXPECT_EQ(io::find_card("sim-1", cards).name, "iocard1");
    EXPECT_EQ(io::find_card("iocard1", cards).name, "iocard1");
    EXPECT_EQ(io::find_card("/dev/gpiochip0", cards).name, "iocard0");
    EXPECT_EQ(io::find_card("/dev/ttyS5", cards).name, "ttyS4");
    EXPECT_EQ(io::find_card("dio120#1", cards).name, "iocard1");
    EXPECT_EQ(io::find_card("qemu-pci-serial-4x", cards).name, "ttyS4");
}

TEST(find_card, ambiguous_model_is_refused) {
    try {
        (void)io::find_card("dio120", sample());
        FAIL();
    } catch (const io::ambiguous_card& e) {
        const std::string w = e.what();
        EXPECT_NE(w.find("ambiguous"), std::string::npos) << w;
        EXPECT_NE(w.find("dio120#1 (sim-1)"), std::string::npos) << w;
    }
}

TEST(find_card, unknown_key_lists_the_cards) {
    try {
        (void)io::find_card("press-7", sample());
        FAIL();
    } catch (const io::invalid_argument& e) {
        EXPECT_EQ(std::string(e.what()),
                  "no card 'press-7'; cards present: bench (dio120#0 at sim-0), iocard1 (dio120#1 at sim-1), "
                  "ttyS4 (qemu-pci-serial-4x#0 at pci-0000:00:05.0)");
    }
    EXPECT_THROW((void)io::find_card("x", {}), io::invalid_argument);
    try {
        (void)io::find_card("dio12", sample());
        FAIL();
    } catch (const io::ambiguous_card&) {
        FAIL() << "a key that matches nothing is not ambiguous";
    } catch (const io::invalid_argument&) {
    }
}

TEST(port_of, finds_the_port_of_an_offset_through_the_layout) {
    io::card_info c;
    c.ports = io::parse_port_layout("A:8:io B:8:in CL:4:out");
    ASSERT_NE(io::port_of(c, 0), nullptr);
    EXPECT_EQ(io::port_of(c, 0)->name, "A");
    EXPECT_EQ(io::port_of(c, 7)->name, "A");
    EXPECT_EQ(io::port_of(c, 8)->name, "B");
    EXPECT_EQ(io::port_of(c, 19)->name, "CL");
    EXPECT_EQ(io::port_of(c, 20), nullptr) << "past the last port";
    EXPECT_EQ(io::port_of(io::card_info{}, 0), nullptr) << "no layout";
}

TEST(split_line_name, gives_the_port_and_number_that_ports_are_formed_from) {
    using split = std::optional<std::pair<std::string, unsigned>>;
    EXPECT_EQ(io::split_line_name("CH7"), split({"CH", 7}));
    EXPECT_EQ(io::split_line_name("P1A12"), split({"P1A", 12}));
    EXPECT_EQ(io::split_line_name("7"), std::nullopt) << "a number alone names no port";
    EXPECT_EQ(io::split_line_name("RESET"), std::nullopt);
    EXPECT_EQ(io::split_line_name(""), std::nullopt);
    EXPECT_EQ(io::split_line_name("A99999999999"), std::nullopt) << "too large for unsigned";
}

}  // namespace
