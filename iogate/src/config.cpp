// SPDX-License-Identifier: MIT
#include <io/gate/config.hpp>

#include <toml++/toml.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <unistd.h>

namespace io::gate {

namespace {

std::string type_name(const toml::node& n) {
    switch (n.type()) {
    case toml::node_type::string:
        return "a string";
    case toml::node_type::integer:
        return "an integer";
    case toml::node_type::floating_point:
        return "a number";
    case toml::node_type::boolean:
        return "a boolean";
    case toml::node_type::array:
        return "an array";
    case toml::node_type::table:
        return "a table";
    default:
        return "a date or time";
    }
}

// Reads one table, naming its keys "prefix.key" in errors.
class section {
public:
    section(const std::string& file, const toml::table& t, std::string prefix)
        : file_{file}, t_{t}, prefix_{std::move(prefix)} {}

    [[noreturn]] void fail(std::string_view key, const std::string& what) const {
        std::string where = file_;
        if (const auto* n = t_.get(key); n != nullptr && n->source().begin)
            where += ":" + std::to_string(n->source().begin.line);
        throw config_error(where + ": " + name(key) + ": " + what);
    }

    // "FILE:LINE: PREFIX", where this table begins.
    std::string location() const {
        std::string where = file_;
        if (t_.source().begin)
            where += ":" + std::to_string(t_.source().begin.line);
        return where + ": " + prefix_;
    }

    std::string name(std::string_view key) const { return prefix_.empty() ? std::string{key} : prefix_ + "." + std::string{key}; }

    void only(std::initializer_list<std::string_view> allowed) const {
        for (const auto& [k, v] : t_) {
            if (std::find(allowed.begin(), allowed.end(), k.str()) != allowed.end())
                continue;
            std::string list;
            for (const auto a : allowed)
                list += (list.empty() ? "" : ", ") + std::string{a};
            fail(k.str(), "unknown key; allowed here: " + list);
        }
    }

    std::optional<std::string> str(std::string_view key) const {
        const auto* n = t_.get(key);
        if (n == nullptr)
            return std::nullopt;
        if (!n->is_string())
            fail(key, "expected a string, found " + type_name(*n));
        return n->as_string()->get();
    }

    std::optional<bool> boolean(std::string_view key) const {
        const auto* n = t_.get(key);
        if (n == nullptr)
            return std::nullopt;
        if (!n->is_boolean())
            fail(key, "expected true or false, found " + type_name(*n));
        return n->as_boolean()->get();
    }

    std::optional<std::int64_t> integer(std::string_view key, std::int64_t lo, std::int64_t hi) const {
        const auto* n = t_.get(key);
        if (n == nullptr)
            return std::nullopt;
        if (!n->is_integer())
            fail(key, "expected an integer " + std::to_string(lo) + ".." + std::to_string(hi) + ", found " +
                          type_name(*n));
        const auto v = n->as_integer()->get();
        if (v < lo || v > hi)
            fail(key, std::to_string(v) + " is out of range; allowed: " + std::to_string(lo) + ".." +
                          std::to_string(hi));
        return v;
    }

    std::vector<std::string> strings(std::string_view key) const {
        const auto* n = t_.get(key);
        std::vector<std::string> out;
        if (n == nullptr)
            return out;
        if (!n->is_array())
            fail(key, "expected an array of strings, found " + type_name(*n));
        for (const auto& e : *n->as_array()) {
            if (!e.is_string())
                fail(key, "expected an array of strings, found an element that is " + type_name(e));
            out.push_back(e.as_string()->get());
        }
        return out;
    }

    const toml::table* table(std::string_view key) const {
        const auto* n = t_.get(key);
        if (n == nullptr)
            return nullptr;
        if (!n->is_table())
            fail(key, "expected a table ([" + name(key) + "]), found " + type_name(*n));
        return n->as_table();
    }

    const toml::array* table_array(std::string_view key) const {
        const auto* n = t_.get(key);
        if (n == nullptr)
            return nullptr;
        if (!n->is_array_of_tables())
            fail(key, "expected tables ([[" + name(key) + "]]), found " + type_name(*n));
        return n->as_array();
    }

    // An ID (validate_id's rules), named in the message.
    std::string id(std::string_view key, std::string v) const {
        try {
            validate_id(name(key), v);
        } catch (const io::invalid_argument& e) {
            fail(key, std::string{e.what()}.substr(name(key).size() + 1));
        }
        return v;
    }

private:
    const std::string& file_;
    const toml::table& t_;
    std::string prefix_;
};

// Why `writable` cannot be written on a module of `model`; "" when it can.
std::string unwritable(const io::modbus_model& model, const std::vector<std::string>& writable) {
    for (const auto& w : writable) {
        bool ok = false;
        if (w.size() > 2 && w.compare(0, 2, "DO") == 0) {
            unsigned n = 0;
            const auto* end = w.data() + w.size();
            const auto r = std::from_chars(w.data() + 2, end, n);
            ok = r.ec == std::errc{} && r.ptr == end && n < model.outputs && (w.size() == 3 || w[2] != '0');
        }
        if (!ok)
            return "'" + w + "' is not an output of model " + std::string{model.name} +
                   (model.outputs == 0 ? std::string{", which has none"}
                                       : "; allowed: DO0..DO" + std::to_string(model.outputs - 1));
    }
    return {};
}

bool is_modbus_uri(std::string_view s) {
    return s.substr(0, 7) == "modbus-";
}

std::string model_list() {
    std::string s;
    for (const auto& m : io::modbus_models())
        s += (s.empty() ? "" : ", ") + std::string{m.name};
    return s;
}

modbus_server_config parse_modbus_server(const std::string& source, const toml::table& t) {
    modbus_server_config m;
    section s{source, t, "modbus_server"};
    s.only({"enabled", "listen", "port", "max_connections", "idle_timeout_s", "unit"});
    m.enabled = s.boolean("enabled").value_or(true);
    m.options.listen = s.str("listen").value_or("127.0.0.1");
    {
        in6_addr a6{};
        in_addr a4{};
        if (::inet_pton(AF_INET, m.options.listen.c_str(), &a4) != 1 &&
            ::inet_pton(AF_INET6, m.options.listen.c_str(), &a6) != 1)
            s.fail("listen", "'" + m.options.listen +
                                 "' is not an IP address; allowed: an IPv4 or IPv6 address of this machine, "
                                 "e.g. 127.0.0.1 (default), 192.0.2.10, ::1, 0.0.0.0 (every address)");
    }
    m.options.port = static_cast<std::uint16_t>(s.integer("port", 1, 65535).value_or(502));
    m.options.max_connections = static_cast<unsigned>(s.integer("max_connections", 1, 1000).value_or(8));
    m.options.idle_timeout = std::chrono::milliseconds{
        static_cast<std::int64_t>(s.integer("idle_timeout_s", 1, 86400).value_or(60)) * 1000};
    const auto* units = s.table_array("unit");
    if (units == nullptr && m.enabled)
        s.fail("unit", "missing; the cards served, e.g. [[modbus_server.unit]] id = 1, card = \"dio0\"");
    std::size_t i = 0;
    if (units != nullptr)
        for (const auto& n : *units) {
            section u{source, *n.as_table(), "modbus_server.unit[" + std::to_string(i++) + "]"};
            u.only({"id", "card", "writable", "initial_output"});
            modbus_unit_entry e;
            const auto id = u.integer("id", 1, 247);
            if (!id)
                u.fail("id", "missing; the unit ID clients address this card by (1..247)");
            e.id = static_cast<std::uint8_t>(*id);
            const auto card = u.str("card");
            if (!card || card->empty())
                u.fail("card", "missing; the card's label, location (pci:0000:03:00.0), name (iocard0) or MODEL#N");
            e.card = *card;
            e.writable = u.strings("writable");
            e.initial_output = u.boolean("initial_output").value_or(false);
            for (const auto& prev : m.units) {
                if (prev.id == e.id)
                    u.fail("id", "unit " + std::to_string(e.id) + " is configured twice");
                if (prev.card == e.card)
                    u.fail("card", "'" + e.card + "' is configured twice (one unit ID per card)");
            }
            m.units.push_back(std::move(e));
        }
    return m;
}

}  // namespace

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0)
        return {};
    std::string h = buf;
    // The short name: a dot is allowed in IDs, but the node is known by it.
    return h.substr(0, h.find('.'));
}

mqtt_server parse_server_uri(std::string_view uri) {
    const auto bad = [&](const std::string& why) {
        return io::invalid_argument("'" + std::string{uri} + "' " + why +
                                    "; allowed: mqtts://HOST[:PORT] (TLS, port 8883 by default) or "
                                    "mqtt://127.0.0.1[:PORT] (plain, loopback, tests only)");
    };
    mqtt_server s;
    std::string_view rest;
    if (uri.substr(0, 8) == "mqtts://") {
        rest = uri.substr(8);
    } else if (uri.substr(0, 7) == "mqtt://") {
        s.tls = false;
        s.port = 1883;
        rest = uri.substr(7);
    } else {
        throw bad("is not an MQTT server URI");
    }
    if (!rest.empty() && rest.back() == '/')
        rest.remove_suffix(1);
    std::string_view port;
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos)
            throw bad("has an IPv6 address without ']'");
        s.host = std::string{rest.substr(1, close - 1)};
        rest = rest.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':')
                throw bad("has text after the address");
            port = rest.substr(1);
        }
    } else {
        const auto colon = rest.find(':');
        s.host = std::string{rest.substr(0, colon)};
        if (colon != std::string_view::npos)
            port = rest.substr(colon + 1);
    }
    if (s.host.empty() || s.host.find_first_of("/?#@ ") != std::string::npos)
        throw bad("has no valid host");
    if (port.data() != nullptr) {
        unsigned p = 0;
        const auto r = std::from_chars(port.data(), port.data() + port.size(), p);
        if (port.empty() || r.ec != std::errc{} || r.ptr != port.data() + port.size() || p == 0 || p > 65535)
            throw bad("has a bad port (1..65535)");
        s.port = static_cast<std::uint16_t>(p);
    }
    return s;
}

namespace {

// A device ID of [[modbus_module]] or [[serial_port]] that a [[card]] has
// already is refused, naming the card.
void not_a_card_id(const section& s, const gate_config& c, const std::string& id) {
    for (const auto& card : c.cards)
        if (card.device_id == id)
            s.fail("device_id", "'" + id + "' is also the device ID of [[card]] card = '" + card.card +
                                    "'; device IDs are unique in a node");
}

// writable of [[modbus_module]] or [[serial_port]] needs [commands] enabled.
void writable_needs_commands(const section& s, const gate_config& c, const std::vector<std::string>& writable) {
    if (!writable.empty() && !c.node.commands_enabled)
        s.fail("writable", "lines are writable but commands are off; set [commands] enabled = true, or "
                           "remove writable");
}

}  // namespace

gate_config parse_config(std::string_view text, const std::string& source) {
    toml::table root;
    try {
        root = toml::parse(text, source);
    } catch (const toml::parse_error& e) {
        std::ostringstream msg;
        msg << source << ":" << e.source().begin.line << ": not valid TOML: " << e.description();
        throw config_error(msg.str());
    }
    gate_config c;
    section top{source, root, ""};
    top.only({"group_id", "edge_node_id", "state_file", "mqtt", "primary_host", "commands", "store", "card",
              "modbus_module", "serial_port", "modbus_server", "aliases"});
    if (const auto* ms = top.table("modbus_server"))
        c.modbus = parse_modbus_server(source, *ms);
    const bool modbus_only = top.table("mqtt") == nullptr && c.modbus.enabled;
    const auto group = top.str("group_id");
    if (!group && !modbus_only)
        top.fail("group_id", "missing; the Sparkplug group this node belongs to, e.g. group_id = \"plant1\"");
    if (group)
        c.node.group_id = top.id("group_id", *group);
    c.node.edge_node_id = top.id("edge_node_id", top.str("edge_node_id").value_or(host_name()));
    c.node.aliases = top.boolean("aliases").value_or(false);
    if (const auto s = top.str("state_file")) {
        if (s->empty() || s->front() != '/')
            top.fail("state_file", "'" + *s + "' is not an absolute path");
        c.state_file = *s;
    }

    const auto* mt = top.table("mqtt");
    if (modbus_only) {
        if (top.table_array("card") != nullptr)
            top.fail("card", "[[card]] publishes over MQTT, but there is no [mqtt]");
        if (top.table_array("modbus_module") != nullptr)
            top.fail("modbus_module", "[[modbus_module]] publishes over MQTT, but there is no [mqtt]");
        if (top.table_array("serial_port") != nullptr)
            top.fail("serial_port", "[[serial_port]] publishes over MQTT, but there is no [mqtt]");
        return c;
    }
    if (mt == nullptr)
        top.fail("mqtt", "missing; [mqtt] needs servers, ca_file, cert_file and key_file");
    section mq{source, *mt, "mqtt"};
    mq.only({"servers", "ca_file", "cert_file", "key_file", "client_id", "keepalive", "allow_plain_loopback",
             "backoff_min_ms", "backoff_max_ms"});
    c.mqtt.allow_plain_loopback = mq.boolean("allow_plain_loopback").value_or(false);
    const auto servers = mq.strings("servers");
    if (servers.empty())
        mq.fail("servers", "missing or empty; e.g. servers = [\"mqtts://broker.example:8883\"]");
    for (const auto& uri : servers) {
        mqtt_server s;
        try {
            s = parse_server_uri(uri);
        } catch (const io::invalid_argument& e) {
            mq.fail("servers", e.what());
        }
        if (!s.tls && !is_loopback_host(s.host))
            mq.fail("servers", "'" + uri + "': plain MQTT only to loopback (127.0.0.1, ::1, localhost); use mqtts://");
        if (!s.tls && !c.mqtt.allow_plain_loopback)
            mq.fail("servers", "'" + uri + "': plain MQTT needs mqtt.allow_plain_loopback = true (for tests only)");
        c.mqtt.servers.push_back(s);
    }
    c.mqtt.ca_file = mq.str("ca_file").value_or("");
    c.mqtt.cert_file = mq.str("cert_file").value_or("");
    c.mqtt.key_file = mq.str("key_file").value_or("");
    const bool tls = std::any_of(c.mqtt.servers.begin(), c.mqtt.servers.end(), [](const auto& s) { return s.tls; });
    if (tls)
        for (const auto* k : {"ca_file", "cert_file", "key_file"})
            if (!mq.str(k))
                mq.fail(k, "missing; TLS needs the CA file, this node's certificate and its private key");
    c.mqtt.client_id = mq.str("client_id").value_or(c.node.group_id + ":" + c.node.edge_node_id);
    if (c.mqtt.client_id.empty() || c.mqtt.client_id.size() > 65535)
        mq.fail("client_id", "must have 1..65535 characters");
    c.mqtt.keepalive = std::chrono::seconds{mq.integer("keepalive", 5, 65535).value_or(30)};
    c.mqtt.backoff_min = std::chrono::milliseconds{mq.integer("backoff_min_ms", 10, 600000).value_or(500)};
    c.mqtt.backoff_max = std::chrono::milliseconds{mq.integer("backoff_max_ms", 10, 3600000).value_or(30000)};
    if (c.mqtt.backoff_max < c.mqtt.backoff_min)
        mq.fail("backoff_max_ms", "is below mqtt.backoff_min_ms");

    if (const auto* ph = top.table("primary_host")) {
        section p{source, *ph, "primary_host"};
        p.only({"id"});
        const auto id = p.str("id");
        if (!id)
            p.fail("id", "missing; the primary host application's ID, as it publishes spBv1.0/STATE/ID");
        c.node.primary_host = p.id("id", *id);
    }
    if (const auto* st = top.table("store")) {
        section p{source, *st, "store"};
        p.only({"journal_file", "capacity", "replay_per_second"});
        if (const auto f = p.str("journal_file")) {
            if (!f->empty() && f->front() != '/')
                p.fail("journal_file", "'" + *f + "' is not an absolute path (\"\" keeps the journal in memory)");
            c.journal_file = *f;
        }
        c.journal_capacity = static_cast<std::size_t>(p.integer("capacity", 1, 10'000'000).value_or(10000));
        c.replay_per_second = static_cast<unsigned>(p.integer("replay_per_second", 1, 100'000).value_or(500));
    }
    if (const auto* cm = top.table("commands")) {
        section p{source, *cm, "commands"};
        p.only({"enabled", "max_per_second"});
        c.node.commands_enabled = p.boolean("enabled").value_or(false);
        c.node.commands_per_second = static_cast<unsigned>(p.integer("max_per_second", 0, 10000).value_or(20));
    }
    if (const auto* cards = top.table_array("card")) {
        std::size_t i = 0;
        for (const auto& n : *cards) {
            section s{source, *n.as_table(), "card[" + std::to_string(i++) + "]"};
            s.only({"card", "device_id", "lines", "writable", "initial_output", "safe_state"});
            card_entry e;
            const auto key = s.str("card");
            if (!key || key->empty())
                s.fail("card", "missing; the card's label, location (pci:0000:03:00.0), name (iocard0) or MODEL#N");
            e.card = *key;
            if (const auto id = s.str("device_id"))
                e.device_id = s.id("device_id", *id);
            e.options.lines = s.strings("lines");
            e.options.writable = s.strings("writable");
            e.options.initial_output = s.boolean("initial_output").value_or(false);
            if (const auto* safe = s.table("safe_state")) {
                section st{source, *safe, s.name("safe_state")};
                for (const auto& [k, v] : *safe) {
                    const std::string line{k.str()};
                    if (std::find(e.options.writable.begin(), e.options.writable.end(), line) == e.options.writable.end())
                        st.fail(line, "is not in writable; a safe state is for lines iogate drives");
                    e.options.safe_state[line] = *st.boolean(line);
                }
            }
            if (!e.options.writable.empty() && !c.node.commands_enabled)
                s.fail("writable", "lines are writable but commands are off; set [commands] enabled = true, or "
                                   "remove writable");
            for (const auto& prev : c.cards)
                if (prev.card == e.card)
                    s.fail("card", "'" + e.card + "' is configured twice");
            c.cards.push_back(std::move(e));
        }
    }
    if (const auto* mods = top.table_array("modbus_module")) {
        std::size_t i = 0;
        for (const auto& n : *mods) {
            section s{source, *n.as_table(), "modbus_module[" + std::to_string(i++) + "]"};
            s.only({"module", "device_id", "poll_ms", "writable"});
            modbus_module_entry e;
            e.where = s.location();
            const auto key = s.str("module");
            if (!key || key->empty())
                s.fail("module", "missing; a libio Modbus URI (modbus-tcp://HOST[:PORT]?unit=1&model=410, "
                                 "modbus-rtu:/dev/ttyS4?unit=1&model=430) or the name of a module configured in "
                                 "/etc/libio/modbus.d");
            e.module = *key;
            if (const auto id = s.str("device_id"))
                e.device_id = s.id("device_id", *id);
            e.writable = s.strings("writable");
            if (is_modbus_uri(e.module)) {
                io::modbus_address a;
                try {
                    a = io::parse_modbus_uri(e.module);
                } catch (const io::invalid_argument& ex) {
                    s.fail("module", ex.what());
                }
                if (a.unit == 0)
                    s.fail("module", "'" + e.module + "' names no unit; add unit=1..247");
                if (a.model.empty())
                    s.fail("module", "'" + e.module + "' names no model; add model=(" + model_list() +
                                         "): iogate does not ask a module for its model, which would hold its "
                                         "event loop");
                if (const auto why = unwritable(io::find_modbus_model(a.model), e.writable); !why.empty())
                    s.fail("writable", why);
                if (e.device_id.empty())
                    s.fail("device_id", "missing; a module given by URI needs the device ID it is published as, "
                                        "e.g. device_id = \"rack3\"");
            } else if (e.device_id.empty()) {
                e.device_id = s.id("module", e.module);
            }
            if (const auto ms = s.integer("poll_ms", 10, 60000))
                e.poll = std::chrono::milliseconds{*ms};
            writable_needs_commands(s, c, e.writable);
            not_a_card_id(s, c, e.device_id);
            for (const auto& prev : c.modbus_modules) {
                if (prev.module == e.module)
                    s.fail("module", "'" + e.module + "' is configured twice");
                if (prev.device_id == e.device_id)
                    s.fail("device_id", "'" + e.device_id + "' is the device ID of two modules");
            }
            c.modbus_modules.push_back(std::move(e));
        }
    }
    if (const auto* ports = top.table_array("serial_port")) {
        std::size_t i = 0;
        for (const auto& n : *ports) {
            section s{source, *n.as_table(), "serial_port[" + std::to_string(i++) + "]"};
            s.only({"port", "device_id", "poll_ms", "writable"});
            serial_port_entry e;
            const auto key = s.str("port");
            if (!key || key->empty())
                s.fail("port", "missing; a path (/dev/ttyS4, /dev/serial/by-id/...), a tty name (ttyS4) or a "
                               "card's port as CARD@N (dio0@1)");
            e.port = *key;
            if (const auto id = s.str("device_id")) {
                e.device_id = s.id("device_id", *id);
            } else {
                // A tty name, given as such or as /dev/NAME, names the device;
                // a longer path or a card's port does not say enough.
                const bool dev_node = e.port.rfind("/dev/", 0) == 0 && e.port.find('/', 5) == std::string::npos;
                const bool tty_name = e.port.find('/') == std::string::npos && e.port.find('@') == std::string::npos;
                if (!dev_node && !tty_name)
                    s.fail("device_id", "missing; port '" + e.port + "' is not a tty name, so give the device ID "
                                        "it is published as, e.g. device_id = \"modem1\"");
                e.device_id = s.id("port", dev_node ? e.port.substr(5) : e.port);
            }
            if (const auto ms = s.integer("poll_ms", 10, 60000))
                e.poll = std::chrono::milliseconds{*ms};
            e.writable = s.strings("writable");
            for (const auto& w : e.writable)
                if (w != "DTR" && w != "RTS")
                    s.fail("writable", "'" + w + "' is not an output of a serial port; allowed: \"DTR\", \"RTS\"");
            writable_needs_commands(s, c, e.writable);
            not_a_card_id(s, c, e.device_id);
            for (const auto& m : c.modbus_modules)
                if (m.device_id == e.device_id)
                    s.fail("device_id", "'" + e.device_id + "' is also the device ID of [[modbus_module]] module = '" +
                                            m.module + "'; device IDs are unique in a node");
            for (const auto& prev : c.serial_ports) {
                if (prev.port == e.port)
                    s.fail("port", "'" + e.port + "' is configured twice");
                if (prev.device_id == e.device_id)
                    s.fail("device_id", "'" + e.device_id + "' is the device ID of two serial ports");
            }
            c.serial_ports.push_back(std::move(e));
        }
    }
    for (const auto& u : c.modbus.units)
        for (const auto& e : c.cards)
            if (e.card == u.card)
                top.fail("card", "'" + e.card + "' is both a [[card]] (MQTT) and Modbus unit " + std::to_string(u.id) +
                                     "; a card is served by one of the two");
    return c;
}

std::vector<resolved_modbus_module> resolve_modbus_modules(const gate_config& c,
                                                           const std::filesystem::path& libio_dir) {
    std::vector<resolved_modbus_module> out;
    std::optional<std::vector<io::modbus_module_config>> site;
    for (const auto& e : c.modbus_modules) {
        io::modbus_module_config m;
        m.name = e.device_id;
        m.poll = e.poll.value_or(std::chrono::milliseconds{100});
        if (is_modbus_uri(e.module)) {
            m.address = io::parse_modbus_uri(e.module);  // checked by parse_config
            out.push_back({std::move(m), e.writable});
            continue;
        }
        if (!site)
            site = io::load_modbus_config(libio_dir);
        const auto it = std::find_if(site->begin(), site->end(), [&](const auto& x) { return x.name == e.module; });
        const auto dir = (libio_dir / "modbus.d").string();
        if (it == site->end()) {
            std::string names;
            for (const auto& x : *site)
                names += (names.empty() ? "" : ", ") + x.name;
            throw config_error(e.where + ".module: '" + e.module + "' is not a module configured in " + dir +
                               (names.empty() ? std::string{" (it configures none)"} : " (it configures " + names + ")") +
                               "; allowed: one of those names, or a modbus-tcp:// or modbus-rtu: URI");
        }
        if (it->address.model.empty())
            throw config_error(e.where + ".module: '" + e.module + "' has no model in " + it->file + ":" +
                               std::to_string(it->line) + "; give it one there (model = " + model_list() +
                               "): iogate does not ask a module for its model, which would hold its event loop");
        if (const auto why = unwritable(io::find_modbus_model(it->address.model), e.writable); !why.empty())
            throw config_error(e.where + ".writable: " + why);
        m.address = it->address;
        if (!e.poll)
            m.poll = it->poll;
        m.file = it->file;
        m.line = it->line;
        out.push_back({std::move(m), e.writable});
    }
    return out;
}

void check_config(const gate_config& c) {
    if (c.mqtt.servers.empty() && c.modbus.enabled)
        return;  // Modbus only
    (void)resolve_modbus_modules(c, io::config_dir());
    check_options(c.mqtt);
    const bool tls = std::any_of(c.mqtt.servers.begin(), c.mqtt.servers.end(), [](const auto& s) { return s.tls; });
    if (!tls)
        return;
    const auto cn = certificate_common_name(c.mqtt.cert_file);
    if (cn != c.node.edge_node_id)
        throw io::invalid_argument("certificate " + c.mqtt.cert_file + " is issued to '" + cn +
                                   "' but edge_node_id is '" + c.node.edge_node_id +
                                   "'; the broker knows the node by its certificate: set edge_node_id = \"" + cn +
                                   "\" or use this node's certificate");
}

gate_config load_config(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        throw config_error(path + ": cannot read: " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    return parse_config(text.str(), path);
}

}  // namespace io::gate
