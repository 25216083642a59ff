// SPDX-License-Identifier: MIT
#pragma once

#include <io/card.hpp>
#include <io/event_loop.hpp>
#include <io/gate/config.hpp>
#include <io/gate/node.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace io::gate {

/// The configured cards that are present, as devices of a node: a card
/// that arrives and that a [[card]] entry names becomes a device (DBIRTH
/// when the node is online); one that leaves, or whose lines fail, is
/// removed (DDEATH) and comes back when it arrives again. Feed it the card
/// monitor's inventory and events.
class card_set final {
public:
    /// Makes the device of a card; the default makes a card_device.
    using factory = std::function<std::unique_ptr<device>(
        const card_info& card, const card_entry& entry, std::function<void(std::vector<metric>)> on_data,
        std::function<void(std::error_code)> on_gone)>;

    card_set(std::vector<card_entry> entries, node& n, event_loop& loop, factory make = {});
    ~card_set();
    card_set(const card_set&) = delete;
    card_set& operator=(const card_set&) = delete;

    /// Publishes `card` if an entry names it among all the cards `present`
    /// (a model name matches only while it is unique; an ambiguous key is
    /// logged). Failures to take the card are logged, never thrown.
    void attach(const card_info& card, const std::vector<card_info>& present);
    /// Removes the card's device, if it has one.
    void detach(const card_info& card);
    /// The entries that name no card of `present`.
    std::vector<std::string> absent(const std::vector<card_info>& present) const;
    /// The device IDs published now.
    std::vector<std::string> device_ids() const;

    /// Called for log lines; default: none.
    std::function<void(const std::string&)> log;

private:
    struct entry {
        std::string id;
        std::unique_ptr<device> dev;
    };
    void say(const std::string& text) const;
    void drop(const std::string& syspath);
    void reap();

    std::vector<card_entry> entries_;
    node& node_;
    event_loop& loop_;
    factory make_;
    std::map<std::string, entry> devices_;  // by the card's syspath
    std::vector<std::string> failed_;       // syspaths whose devices reported failure
    registration reap_;
};

}  // namespace io::gate
