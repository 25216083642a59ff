// SPDX-License-Identifier: MIT
#include <io/gate/modbus_units.hpp>

#include <io/chip.hpp>
#include <io/error.hpp>
#include <io/gate/card_match.hpp>

#include <algorithm>

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
    auto builder = c.prepare_request();
    builder.consumer("iogate");
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
            builder.add(off, line_config::output(entry.initial_output));
            lines.push_back(unit_line{off, names[off], true, true});
        } else if (input) {
            builder.add(off, line_config::input(edge::both));
            lines.push_back(unit_line{off, names[off], false, false});
        }
    }
    if (lines.empty())
        throw io::invalid_argument("card " + card.label + " has no free input or writable line to serve");
    request_.emplace(builder.make());
    std::vector<unit_port> ports;
    for (const auto& p : c.ports())
        ports.push_back(unit_port{p.name, p.lines});
    map_ = std::make_unique<register_map>(std::move(lines), ports, *this);
    edge_watch_ = on_edge_events(loop, *request_, [this](std::span<const edge_event> ev, std::error_code ec) {
        if (ec) {
            failed_ = true;
            edge_watch_.reset();
            return;
        }
        edges_ += ev.size();
    });
}

card_unit::~card_unit() = default;

std::uint64_t card_unit::get(std::span<const unsigned> lines, std::error_code& ec) {
    return request_->get_bits(lines, ec);
}

void card_unit::set(std::span<const unsigned> lines, std::uint64_t bits, std::error_code& ec) {
    request_->set_bits(lines, bits, ec);
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
