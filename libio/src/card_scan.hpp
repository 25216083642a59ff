// SPDX-License-Identifier: MIT
#pragma once

#include <io/card.hpp>

#include <libudev.h>

#include <vector>

namespace io::detail {

/// Takes the inventory of cards with the given udev context.
std::vector<card_info> scan_cards(udev* u);

}  // namespace io::detail
