// SPDX-License-Identifier: MIT
#include <io/gate/card_match.hpp>

#include <io/error.hpp>

namespace io::gate {

bool names_card(std::string_view key, const card_info& card, const std::vector<card_info>& present,
                std::string& ambiguous) {
    ambiguous.clear();
    try {
        return find_card(key, present).syspath == card.syspath;
    } catch (const ambiguous_card& ex) {
        ambiguous = ex.what();
    } catch (const io::invalid_argument&) {
    }
    return false;
}

std::vector<std::string> absent_keys(const std::vector<std::string>& keys, const std::vector<card_info>& present) {
    std::vector<std::string> out;
    for (const auto& k : keys) {
        try {
            (void)find_card(k, present);
        } catch (const ambiguous_card&) {
        } catch (const io::invalid_argument&) {
            out.push_back(k);
        }
    }
    return out;
}

}  // namespace io::gate
