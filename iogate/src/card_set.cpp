// SPDX-License-Identifier: MIT
#include <io/gate/card_set.hpp>

#include <io/error.hpp>
#include <io/gate/card_device.hpp>
#include <io/gate/card_match.hpp>

#include <chrono>

namespace io::gate {

card_set::card_set(std::vector<card_entry> entries, node& n, event_loop& loop, factory make)
    : entries_{std::move(entries)}, node_{n}, loop_{loop}, make_{std::move(make)} {
    if (!make_)
        make_ = [this](const card_info& card, const card_entry& e, std::function<void(std::vector<metric>)> on_data,
                       std::function<void(std::error_code)> on_gone) -> std::unique_ptr<device> {
            auto d = std::make_unique<card_device>(card, e.options, loop_, std::move(on_data), std::move(on_gone));
            for (const auto& l : d->held_elsewhere())
                say("card " + card.label + ": line " + l + " is held by another process; published as BAD");
            return d;
        };
}

card_set::~card_set() = default;

void card_set::say(const std::string& text) const {
    if (log)
        log(text);
}

void card_set::attach(const card_info& card, const std::vector<card_info>& present) {
    for (const auto& e : entries_) {
        std::string ambiguous;
        if (!names_card(e.card, card, present, ambiguous)) {
            if (!ambiguous.empty())
                say("[[card]] card = '" + e.card + "': " + ambiguous);
            continue;
        }
        if (devices_.count(card.syspath) != 0)
            return;
        const std::string id = e.device_id.empty() ? card.label : e.device_id;
        try {
            auto d = make_(
                card, e, [this, id](std::vector<metric> m) { node_.device_data(id, std::move(m)); },
                [this, id, sys = card.syspath](std::error_code ec) {
                    say("card " + id + ": " + ec.message() + "; unpublished until it returns");
                    // Not removed from inside its own callback: later in the loop.
                    failed_.push_back(sys);
                    reap_ = loop_.call_after(std::chrono::milliseconds{0}, [this] { reap(); });
                });
            node_.add_device(id, *d);
            devices_.emplace(card.syspath, entry{id, std::move(d)});
            say("card " + card.label + " (" + card.location + ") published as device " + id);
        } catch (const std::exception& ex) {
            say("card " + card.label + ": " + ex.what());
        }
        return;
    }
}

void card_set::detach(const card_info& card) {
    drop(card.syspath);
}

std::vector<std::string> card_set::absent(const std::vector<card_info>& present) const {
    std::vector<std::string> keys;
    for (const auto& e : entries_)
        keys.push_back(e.card);
    return absent_keys(keys, present);
}

std::vector<std::string> card_set::device_ids() const {
    std::vector<std::string> out;
    for (const auto& [sys, e] : devices_)
        out.push_back(e.id);
    return out;
}

void card_set::drop(const std::string& syspath) {
    const auto it = devices_.find(syspath);
    if (it == devices_.end())
        return;
    node_.remove_device(it->second.id);
    devices_.erase(it);
}

void card_set::reap() {
    const auto failed = std::move(failed_);
    failed_.clear();
    for (const auto& s : failed)
        drop(s);
}

}  // namespace io::gate
