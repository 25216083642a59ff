// SPDX-License-Identifier: MIT
#pragma once

#include <io/export.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace io {

/// A group of digital lines of a card, as the card describes it.
struct port_layout {
    std::string name;     ///< "A", "P2CH", "IN", "OUT"; lines are NAME0, NAME1, ...
    unsigned width = 0;   ///< number of lines
    bool input = false;   ///< the lines can be inputs
    bool output = false;  ///< the lines can be outputs
};

/// A serial port of a known card.
struct serial_port_info {
    std::string path;   ///< "/dev/ttyS4", "/dev/ttyUSB0"
    unsigned index = 0; ///< position on the card, from 0 (in the order of the card's register windows)
    std::string modes;  ///< "rs232", "rs422", "rs485", or "multi" (chosen in software)
};

/// One I/O card: an iocard.ko card (real or virtual), a DIO card of a
/// mainline gpio driver, or a serial card, as udev and sysfs describe it.
struct card_info {
    std::string name;      ///< kernel name: "iocard0", or the gpiochip / first tty of other cards
    std::string model;     ///< "dio120", "acces-pcie-idio-24", "qemu-pci-serial-4x"
    std::string vendor;    ///< "Measurement Computing", "virtual"
    std::string location;  ///< stable bus location: "pci:0000:03:00.0", "usb:1-2", "sim:0"
    std::string label;     ///< the administrator's label (udev IOCARD_LABEL), else the name
    std::string driver;    ///< kernel driver: "iocard", "gpio-pcie-idio-24", "8250_pci"
    unsigned index = 0;    ///< position among the cards of the same model, by location
    std::string gpiochip;  ///< "/dev/gpiochip3"; empty for a serial-only card
    unsigned num_lines = 0;
    std::string cos;       ///< change-of-state source: "hw" (interrupt), "scan" (sampled), "" unknown
    std::vector<port_layout> ports;
    std::vector<serial_port_info> serial_ports;
    std::string syspath;   ///< the card's device in sysfs
};

/// Every card present now. Throws std::system_error if udev cannot be read.
LIBIO_EXPORT std::vector<card_info> enumerate();

/// The card that `key` names, tried in this order: label, location, kernel
/// name, gpiochip path, serial port path, "MODEL#INDEX", and MODEL when only
/// one card has it. Throws io::invalid_argument listing the cards present
/// when none matches, io::ambiguous_card (a kind of it) when several do.
LIBIO_EXPORT card_info find_card(std::string_view key);
LIBIO_EXPORT card_info find_card(std::string_view key, const std::vector<card_info>& cards);

/// The port of the card's layout that holds the line at `offset` (lines are
/// numbered through the ports in order); nullptr when the layout is unknown
/// or ends before it.
LIBIO_EXPORT const port_layout* port_of(const card_info& card, unsigned offset) noexcept;

/// Parses a port layout as iocard.ko and the hwdb write it:
/// "A:8:io B:8:in ..." (NAME:WIDTH:in|out|io). Throws io::invalid_argument.
LIBIO_EXPORT std::vector<port_layout> parse_port_layout(std::string_view text);

}  // namespace io
