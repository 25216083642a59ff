// SPDX-License-Identifier: MIT
#pragma once

#include <io/card.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace io::gate {

/// Whether the configured key (a label, location, name or MODEL#N, as
/// io::find_card reads it) names `card` among all the cards `present`. A key
/// that names several cards names none of them; `ambiguous` then says why
/// (else it is left empty).
bool names_card(std::string_view key, const card_info& card, const std::vector<card_info>& present,
                std::string& ambiguous);

/// The keys that name no card of `present` (an ambiguous key names some).
std::vector<std::string> absent_keys(const std::vector<std::string>& keys, const std::vector<card_info>& present);

}  // namespace io::gate
