// SPDX-License-Identifier: MIT
// Lines requested through libgpiod's C API, the contender the benchmarks set
// beside libio (bench_gpio on a virtual card, bench_cost on the fake kernel).
#pragma once

#include <gpiod.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <vector>

namespace bench {

/// The lines `offsets` of the gpiochip at `path`, as inputs (with edge
/// detection on both edges when `edges`) or outputs, requested by `consumer`
/// and released when the object goes.
/// \throws std::system_error with libgpiod's errno when the chip cannot be
///         opened or the request fails.
struct gpiod_c_request {
    gpiod_line_request* req = nullptr;

    gpiod_c_request(const std::string& path, const std::vector<unsigned>& offsets, bool output, bool edges,
                    const char* consumer) {
        gpiod_chip* chip = gpiod_chip_open(path.c_str());
        if (chip == nullptr)
            throw std::system_error(errno, std::system_category(), "gpiod_chip_open " + path);
        gpiod_line_settings* s = gpiod_line_settings_new();
        gpiod_line_config* lc = gpiod_line_config_new();
        gpiod_request_config* rc = gpiod_request_config_new();
        gpiod_line_settings_set_direction(s, output ? GPIOD_LINE_DIRECTION_OUTPUT : GPIOD_LINE_DIRECTION_INPUT);
        if (edges)
            gpiod_line_settings_set_edge_detection(s, GPIOD_LINE_EDGE_BOTH);
        gpiod_line_config_add_line_settings(lc, offsets.data(), offsets.size(), s);
        gpiod_request_config_set_consumer(rc, consumer);
        req = gpiod_chip_request_lines(chip, rc, lc);
        const int err = errno;
        gpiod_request_config_free(rc);
        gpiod_line_config_free(lc);
        gpiod_line_settings_free(s);
        gpiod_chip_close(chip);
        if (req == nullptr)
            throw std::system_error(err, std::system_category(), "gpiod_chip_request_lines on " + path);
    }
    ~gpiod_c_request() { gpiod_line_request_release(req); }
    gpiod_c_request(const gpiod_c_request&) = delete;
    gpiod_c_request& operator=(const gpiod_c_request&) = delete;
};

}  // namespace bench
