// SPDX-License-Identifier: MIT
// Lines held in memory behind iogate's Modbus register map
// (io::gate::line_access), for tests that serve them without a card:
//   io::test::memory_lines lines;
//   lines.levels[3] = true;                       // line 3 reads high
//   io::gate::register_map map{unit_lines, ports, lines};
#pragma once

#include <io/gate/modbus_server.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <system_error>

namespace io::test {

struct memory_lines final : io::gate::line_access {
    std::map<unsigned, bool> levels;  ///< by offset; absent: low
    std::uint64_t edges = 0;
    std::uint64_t lost = 0;
    bool failing = false;  ///< every get and set fails with ENODEV (a card gone)
    unsigned sets = 0;     ///< set() calls that drove lines
    std::function<void(unsigned offset, bool level)> on_set;

    std::uint64_t get(std::span<const unsigned> lines, std::error_code& ec) override {
        if (failing) {
            ec = std::make_error_code(std::errc::no_such_device);
            return 0;
        }
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < lines.size(); ++i)
            if (levels[lines[i]])
                v |= std::uint64_t{1} << i;
        return v;
    }
    void set(std::span<const unsigned> lines, std::uint64_t bits, std::error_code& ec) override {
        if (failing) {
            ec = std::make_error_code(std::errc::no_such_device);
            return;
        }
        ++sets;
        for (std::size_t i = 0; i < lines.size(); ++i) {
            const bool v = (bits >> i & 1U) != 0;
            levels[lines[i]] = v;
            if (on_set)
                on_set(lines[i], v);
        }
    }
    std::uint64_t edges_seen() const override { return edges; }
    std::uint64_t lost_events() const override { return lost; }
};

}  // namespace io::test
