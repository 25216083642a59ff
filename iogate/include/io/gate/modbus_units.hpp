// SPDX-License-Identifier: MIT
#pragma once

#include <io/card.hpp>
#include <io/event_loop.hpp>
#include <io/gate/modbus_server.hpp>
#include <io/line_request.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace io::gate {

/// One [[modbus_server.unit]] of the configuration.
struct modbus_unit_entry {
    std::uint8_t id = 1;                ///< the unit ID (1..247)
    std::string card;                   ///< how io::find_card names the card
    std::vector<std::string> writable;  ///< lines clients may write (coils, holding registers)
    bool initial_output = false;        ///< the level writable lines get when taken
};

/// [modbus_server]: off unless the section is present.
struct modbus_server_config {
    bool enabled = false;
    modbus_server_options options;
    std::vector<modbus_unit_entry> units;
};

/// A card's digital lines as a Modbus unit. The input lines (those of
/// input ports, or inputs when the card gives no layout) become discrete
/// inputs, requested with edge detection so that edges are counted; the
/// writable lines are requested as outputs and become coils. The unit holds
/// its line requests (one per 64 lines): iogate is the lines' one owner.
class card_unit final : public line_access {
public:
    /// Throws io::invalid_argument for a line the card lacks or cannot
    /// drive, std::system_error when the lines cannot be requested.
    card_unit(const card_info& card, const modbus_unit_entry& entry, event_loop& loop);
    ~card_unit() override;
    card_unit(const card_unit&) = delete;
    card_unit& operator=(const card_unit&) = delete;

    register_map& map() noexcept { return *map_; }
    /// Set once the request failed (the card went away).
    bool failed() const noexcept { return failed_; }

    std::uint64_t get(std::span<const unsigned> lines, std::error_code& ec) override;
    void set(std::span<const unsigned> lines, std::uint64_t bits, std::error_code& ec) override;
    std::uint64_t edges_seen() const override { return edges_; }
    std::uint64_t lost_events() const override;

private:
    /// One GPIO request holds at most 64 lines: a larger card takes several.
    struct part {
        std::optional<line_request> request;
        registration edge_watch;
    };
    std::vector<part> parts_;
    std::map<unsigned, std::size_t> part_of_;  // offset -> index into parts_
    std::unique_ptr<register_map> map_;
    std::uint64_t edges_ = 0;
    bool failed_ = false;
};

/// The Modbus server with its configured cards: a card that arrives and a
/// unit names is served under that unit ID; one that leaves is answered
/// with exception 0B until it returns. Feed it the card monitor's
/// inventory and events, like card_set.
class modbus_units final {
public:
    /// Opens the server (std::system_error when the port cannot be bound).
    modbus_units(const modbus_server_config& config, event_loop& loop);
    ~modbus_units();
    modbus_units(const modbus_units&) = delete;
    modbus_units& operator=(const modbus_units&) = delete;

    void attach(const card_info& card, const std::vector<card_info>& present);
    void detach(const card_info& card);
    /// The units whose card is not present.
    std::vector<std::string> absent(const std::vector<card_info>& present) const;

    modbus_server& server() noexcept { return server_; }
    /// Called for log lines (also the server's); default: none.
    void set_log(std::function<void(const std::string&)> log);

private:
    void say(const std::string& text) const;

    std::vector<modbus_unit_entry> entries_;
    event_loop& loop_;
    modbus_server server_;
    std::map<std::string, std::pair<std::uint8_t, std::unique_ptr<card_unit>>> units_;  // by syspath
    std::function<void(const std::string&)> log_;
};

}  // namespace io::gate
