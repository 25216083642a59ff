// SPDX-License-Identifier: MIT
#include <io/gate/modbus_units.hpp>

#include <io/chip.hpp>
#include <io/error.hpp>
#include <io/gate/card_match.hpp>

#include <algorithm>
#include <array>

namespace io::gate {

card_unit::card_unit(const card_info& card, const modbus_unit_entry& entry, event_loop& loop) {
    if (card.gpiochip.empty())
        throw io::invalid_argument("card " + card.label + " has no digital lines (no gpiochip)");
    chip c{card.gpiochip};
    std::vector<std::string> names;
    std::vector<line_info> infos;
    for (unsigned off = 0; off < c.num_lines(); ++off) {
        infos.push_back(c.info(off));
        names.push_back(infos.back().name.empty() ? "L" + std::to_string(off) : infos.back().name);
    }
    std::vector<unit_line> lines;
    std::vector<std::pair<unsigned, line_config>> wanted;
    for (const auto& w : entry.writable) {
        const auto it = std::find(names.begin(), names.end(), w);
        if (it == names.end())
            throw io::invalid_argument("card " + card.label + " has no line '" + w + "'");
        const auto off = static_cast<unsigned>(it - names.begin());
        if (const auto* p = port_of(card, off); p != nullptr && !p->output)
            throw io::invalid_argument("card " + card.label + ": line " + w + " is an input (port " + p->name +
                                       " cannot drive); only output lines can be writable");
    }
    for (unsigned off = 0; off < infos.size(); ++off) {
        if (infos[off].used)
            continue;  // held by another process: not served
        const bool writable = std::find(entry.writable.begin(), entry.writable.end(), names[off]) != entry.writable.end();
        const auto* p = port_of(card, off);
        const bool input = p != nullptr ? p->input : infos[off].dir == direction::input;
        if (writable) {
            wanted.emplace_back(off, line_config::output(entry.initial_output));
            lines.push_back(unit_line{off, names[off], true, true});
        } else if (input) {
            wanted.emplace_back(off, line_config::input(edge::both));
            lines.push_back(unit_line{off, names[off], false, false});
        }
    }
    if (lines.empty())
        throw io::invalid_argument("card " + card.label + " has no free input or writable line to serve");
    constexpr std::size_t per_request = 64;  // the GPIO uAPI v2's GPIO_V2_LINES_MAX
    parts_.resize((wanted.size() + per_request - 1) / per_request);
    for (std::size_t i = 0; i < parts_.size(); ++i) {
        auto builder = c.prepare_request();
        builder.consumer("iogate");
        for (std::size_t j = i * per_request; j < std::min(wanted.size(), (i + 1) * per_request); ++j) {
            builder.add(wanted[j].first, wanted[j].second);
            part_of_[wanted[j].first] = i;
        }
        parts_[i].request.emplace(builder.make());
    }
    std::vector<unit_port> ports;
    for (const auto& p : c.ports())
        ports.push_back(unit_port{p.name, p.lines});
    map_ = std::make_unique<register_map>(std::move(lines), ports, *this);
    for (auto& p : parts_)
        p.edge_watch = on_edge_events(loop, *p.request, [this, w = &p.edge_watch](std::span<const edge_event> ev,
                                                                                   std::error_code ec) {
            if (ec) {
                failed_ = true;
                w->reset();
                return;
            }
            edges_ += ev.size();
        });
}

card_unit::~card_unit() = default;

std::uint64_t card_unit::get(std::span<const unsigned> lines, std::error_code& ec) {
    // The lines of each request read at once, their bits put back in place.
    std::uint64_t out = 0;
    std::array<unsigned, 64> sub{};
    for (std::size_t i = 0; i < parts_.size(); ++i) {
        std::size_t n = 0;
        for (const auto off : lines)
            if (part_of_.at(off) == i)
                sub[n++] = off;
        if (n == 0)
            continue;
        const auto bits = parts_[i].request->get_bits(std::span<const unsigned>{sub.data(), n}, ec);
        if (ec)
            return 0;
        std::size_t k = 0;
        for (std::size_t j = 0; j < lines.size(); ++j)
            if (part_of_.at(lines[j]) == i && (bits >> k++ & 1U) != 0)
                out |= std::uint64_t{1} << j;
    }
    return out;
}

void card_unit::set(std::span<const unsigned> lines, std::uint64_t bits, std::error_code& ec) {
    std::array<unsigned, 64> sub{};
    for (std::size_t i = 0; i < parts_.size(); ++i) {
        std::size_t n = 0;
        std::uint64_t v = 0;
        for (std::size_t j = 0; j < lines.size(); ++j)
            if (part_of_.at(lines[j]) == i) {
                if ((bits >> j & 1U) != 0)
                    v |= std::uint64_t{1} << n;
                sub[n++] = lines[j];
            }
        if (n == 0)
            continue;
        parts_[i].request->set_bits(std::span<const unsigned>{sub.data(), n}, v, ec);
        if (ec)
            return;
    }
}

std::uint64_t card_unit::lost_events() const {
    std::uint64_t n = 0;
    for (const auto& p : parts_)
        n += p.request->lost_events();
    return n;
}

modbus_units::modbus_units(const modbus_server_config& config, event_loop& loop)
    : entries_{config.units}, loop_{loop}, server_{config.options, loop} {
    for (const auto& e : entries_)
        server_.set_unit(e.id, nullptr);
}

modbus_units::~modbus_units() {
    for (const auto& [sys, u] : units_)
        server_.set_unit(u.first, nullptr);
}

void modbus_units::set_log(std::function<void(const std::string&)> log) {
    log_ = log;
    server_.log = std::move(log);
}

void modbus_units::say(const std::string& text) const {
    if (log_)
        log_(text);
}

void modbus_units::attach(const card_info& card, const std::vector<card_info>& present) {
    for (const auto& e : entries_) {
        std::string ambiguous;
        if (!names_card(e.card, card, present, ambiguous)) {
            if (!ambiguous.empty())
                say("[[modbus_server.unit]] card = '" + e.card + "': " + ambiguous);
            continue;
        }
        if (units_.count(card.syspath) != 0)
            return;
        try {
            auto u = std::make_unique<card_unit>(card, e, loop_);
            server_.set_unit(e.id, &u->map());
            const auto& m = u->map();
            say("card " + card.label + " (" + card.location + ") served as Modbus unit " + std::to_string(e.id) + ": " +
                std::to_string(m.discrete_inputs().size()) + " discrete inputs, " + std::to_string(m.coils().size()) +
                " coils, " + std::to_string(register_map::counter_registers + m.port_registers().size()) +
                " input registers, " + std::to_string(m.holding_registers().size()) + " holding registers");
            units_.emplace(card.syspath, std::make_pair(e.id, std::move(u)));
        } catch (const std::exception& ex) {
            say("card " + card.label + " (Modbus unit " + std::to_string(e.id) + "): " + ex.what());
        }
        return;
    }
}

void modbus_units::detach(const card_info& card) {
    const auto it = units_.find(card.syspath);
    if (it == units_.end())
        return;
    server_.set_unit(it->second.first, nullptr);
    say("card " + card.label + " gone; Modbus unit " + std::to_string(it->second.first) +
        " answers exception 0B until it returns");
    units_.erase(it);
}

std::vector<std::string> modbus_units::absent(const std::vector<card_info>& present) const {
    std::vector<std::string> keys;
    for (const auto& e : entries_)
        keys.push_back(e.card);
    return absent_keys(keys, present);
}

}  // namespace io::gate
