// SPDX-License-Identifier: MIT
// The parts of io::serial_port that need no tty: finding a card's port by
// its index. Ports themselves are tested over ptys (tests/native) and UARTs
// (tests/vm).
#include <io/card.hpp>
#include <io/error.hpp>
#include <io/serial_port.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

io::card_info serial_card(std::vector<io::serial_port_info> ports) {
    io::card_info c;
    c.name = "ttyS4";
    c.label = "modbus";
    c.model = "qemu-pci-serial-4x";
    c.location = "pci:0000:00:05.0";
    c.serial_ports = std::move(ports);
    return c;
}

std::string refusal(const io::card_info& c, unsigned index) {
    try {
        (void)io::serial_port_path(c, index);
    } catch (const io::invalid_argument& e) {
        return e.what();
    }
    ADD_FAILURE() << "port " << index << " was found";
    return {};
}

TEST(serial_port_path, finds_a_port_by_its_index_not_its_place_in_the_list) {
    // udev numbers the ports (IOCARD_SERIAL_INDEX); a port that went away
    // leaves a gap, and the others keep their numbers and /dev names.
    const auto c = serial_card({{"/dev/ttyS4", 0, "rs232"}, {"/dev/ttyS6", 2, "rs232"}, {"/dev/ttyS7", 3, "rs232"}});
    EXPECT_EQ(io::serial_port_path(c, 0), "/dev/ttyS4");
    EXPECT_EQ(io::serial_port_path(c, 2), "/dev/ttyS6");
    EXPECT_EQ(io::serial_port_path(c, 3), "/dev/ttyS7");
    EXPECT_EQ(refusal(c, 1),
              "card modbus (qemu-pci-serial-4x at pci:0000:00:05.0) has serial ports 0, 2..3; port 1 does not exist");
}

TEST(serial_port_path, names_the_ports_the_card_has) {
    const auto c = serial_card({{"/dev/ttyS4", 0, "rs232"}, {"/dev/ttyS5", 1, "rs232"}});
    EXPECT_EQ(refusal(c, 2),
              "card modbus (qemu-pci-serial-4x at pci:0000:00:05.0) has serial ports 0..1; port 2 does not exist");
    EXPECT_EQ(refusal(serial_card({{"/dev/ttyUSB0", 0, "multi"}}), 1),
              "card modbus (qemu-pci-serial-4x at pci:0000:00:05.0) has serial ports 0; port 1 does not exist");
    EXPECT_EQ(refusal(serial_card({}), 0),
              "card modbus (qemu-pci-serial-4x at pci:0000:00:05.0) has no serial ports; port 0 does not exist");
}

TEST(serial_port_path, the_card_constructor_refuses_the_same_way) {
    const auto c = serial_card({{"/dev/ttyS4", 0, "rs232"}});
    try {
        io::serial_port port{c, 5};
        FAIL() << "opened a port the card does not have";
    } catch (const io::invalid_argument& e) {
        EXPECT_EQ(std::string(e.what()), refusal(c, 5));
    }
}

}  // namespace
