// SPDX-License-Identifier: MIT
#include <io/line_config.hpp>

namespace io {

std::string_view to_string(direction d) noexcept {
    return d == direction::output ? "output" : "input";
}

std::string_view to_string(edge e) noexcept {
    switch (e) {
    case edge::rising:
        return "rising";
    case edge::falling:
        return "falling";
    case edge::both:
        return "both";
    case edge::none:
        break;
    }
    return "none";
}

std::string_view to_string(bias b) noexcept {
    switch (b) {
    case bias::disabled:
        return "disabled";
    case bias::pull_up:
        return "pull-up";
    case bias::pull_down:
        return "pull-down";
    case bias::as_is:
        break;
    }
    return "as-is";
}

std::string_view to_string(drive d) noexcept {
    switch (d) {
    case drive::open_drain:
        return "open-drain";
    case drive::open_source:
        return "open-source";
    case drive::push_pull:
        break;
    }
    return "push-pull";
}

}  // namespace io
