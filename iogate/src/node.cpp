// SPDX-License-Identifier: MIT
#include <io/gate/node.hpp>

#include <io/error.hpp>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <system_error>
#include <unistd.h>

namespace io::gate {

namespace {

constexpr std::string_view namespace_v = "spBv1.0";
constexpr std::string_view rebirth_metric = "Node Control/Rebirth";

}  // namespace

void validate_id(std::string_view what, std::string_view id) {
    if (id.empty())
        throw io::invalid_argument(std::string{what} + " is empty; a Sparkplug ID needs at least one character");
    for (const char c : id) {
        if (c == '+' || c == '/' || c == '#')
            throw io::invalid_argument(std::string{what} + " '" + std::string{id} + "' contains '" + c +
                                       "'; Sparkplug IDs may not contain '+', '/' or '#'");
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            throw io::invalid_argument(std::string{what} + " '" + std::string{id} +
                                       "' contains a control character");
    }
}

// ---- bdSeq on disk

std::optional<std::uint8_t> file_bdseq_store::last() const {
    std::ifstream in(path_);
    if (!in) {
        if (errno == ENOENT)
            return std::nullopt;
        throw std::system_error(errno, std::generic_category(), "read state file " + path_);
    }
    std::string word;
    long long n = -1;
    std::string rest;
    if (!(in >> word >> n) || word != "bdSeq" || n < 0 || n > 255 || (in >> rest))
        throw io::invalid_argument("state file " + path_ +
                                   " is not iogate's (expected one line 'bdSeq N', N 0..255); remove it to "
                                   "start again from bdSeq 0");
    return static_cast<std::uint8_t>(n);
}

std::uint8_t file_bdseq_store::next() {
    const auto prev = last();
    const std::uint8_t v = prev ? static_cast<std::uint8_t>(*prev + 1U) : 0;
    const std::string tmp = path_ + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        throw std::system_error(errno, std::generic_category(), "write state file " + tmp);
    const std::string text = "bdSeq " + std::to_string(v) + "\n";
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    const int err = errno;
    ::close(fd);
    if (!ok)
        throw std::system_error(err, std::generic_category(), "write state file " + tmp);
    if (::rename(tmp.c_str(), path_.c_str()) != 0)
        throw std::system_error(errno, std::generic_category(), "rename " + tmp + " to " + path_);
    return v;
}

// ---- primary host STATE

namespace {

struct json_cursor {
    std::string_view s;
    std::size_t i = 0;
    void ws() {
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])) != 0)
            ++i;
    }
    bool eat(char c) {
        ws();
        if (i < s.size() && s[i] == c) {
            ++i;
            return true;
        }
        return false;
    }
    bool word(std::string_view w) {
        ws();
        if (s.substr(i, w.size()) == w) {
            i += w.size();
            return true;
        }
        return false;
    }
    std::optional<std::string> string() {
        if (!eat('"'))
            return std::nullopt;
        std::string out;
        while (i < s.size() && s[i] != '"') {
            if (s[i] == '\\') {
                if (++i >= s.size())
                    return std::nullopt;
            }
            out += s[i++];
        }
        if (i >= s.size())
            return std::nullopt;
        ++i;
        return out;
    }
};

}  // namespace

std::optional<host_state> parse_host_state(std::string_view text) {
    json_cursor c{text};
    c.ws();
    std::string_view t = text.substr(c.i);
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back())) != 0)
        t.remove_suffix(1);
    if (t == "ONLINE")
        return host_state{true, 0};
    if (t == "OFFLINE")
        return host_state{false, 0};
    if (!c.eat('{'))
        return std::nullopt;
    std::optional<bool> online;
    host_state st;
    if (!c.eat('}')) {
        do {
            const auto key = c.string();
            if (!key || !c.eat(':'))
                return std::nullopt;
            c.ws();
            if (c.word("true")) {
                if (*key == "online")
                    online = true;
            } else if (c.word("false")) {
                if (*key == "online")
                    online = false;
            } else if (c.word("null")) {
            } else if (c.i < c.s.size() && c.s[c.i] == '"') {
                if (!c.string())
                    return std::nullopt;
            } else {
                std::uint64_t n = 0;
                const auto* b = c.s.data() + c.i;
                const auto r = std::from_chars(b, c.s.data() + c.s.size(), n);
                if (r.ec != std::errc{} || r.ptr == b)
                    return std::nullopt;
                c.i += static_cast<std::size_t>(r.ptr - b);
                if (*key == "timestamp")
                    st.timestamp_ms = n;
            }
        } while (c.eat(','));
        if (!c.eat('}'))
            return std::nullopt;
    }
    c.ws();
    if (c.i != c.s.size() || !online)
        return std::nullopt;
    st.online = *online;
    return st;
}

// ---- the node

std::string_view to_string(node::state s) noexcept {
    switch (s) {
    case node::state::stopped:
        return "stopped";
    case node::state::connecting:
        return "connecting";
    case node::state::waiting_host:
        return "waiting for the primary host";
    case node::state::online:
        return "online";
    case node::state::stopping:
        return "stopping";
    }
    return "?";
}

node::node(node_config config, transport& t, bdseq_store& store, std::function<std::uint64_t()> now_ms)
    : config_{std::move(config)}, transport_{t}, store_{store}, now_ms_{std::move(now_ms)} {
    validate_id("group_id", config_.group_id);
    validate_id("edge_node_id", config_.edge_node_id);
    if (config_.primary_host)
        validate_id("primary_host", *config_.primary_host);
    if (config_.max_metrics_per_message == 0)
        config_.max_metrics_per_message = 1;
}

std::string node::topic(std::string_view type, std::string_view device_id) const {
    std::string t{namespace_v};
    t += '/';
    t += config_.group_id;
    t += '/';
    t += type;
    t += '/';
    t += config_.edge_node_id;
    if (!device_id.empty()) {
        t += '/';
        t += device_id;
    }
    return t;
}

payload node::death() const {
    payload p;
    p.timestamp_ms = now_ms_();
    p.metrics.push_back(make_metric("bdSeq", datatype::uint64, std::uint64_t{bdseq_}, p.timestamp_ms));
    return p;
}

std::string node::death_payload() const {
    return encode(death());
}

void node::say(const std::string& text) const {
    if (log)
        log(text);
}

void node::start() {
    if (state_ != state::stopped)
        throw io::usage_error("iogate node: start() while " + std::string{to_string(state_)});
    stop_after_loss_ = false;
    connect();
}

void node::connect() {
    bdseq_ = store_.next();
    state_ = state::connecting;
    host_online_ = false;
    host_timestamp_ = 0;  // each server has its own retained STATE
    ++counters_.connects;
    transport_.connect(will_message{topic("NDEATH"), death_payload()});
}

void node::stop() {
    switch (state_) {
    case state::stopped:
    case state::stopping:
        return;
    case state::online:
    case state::waiting_host:
        send(topic("NDEATH"), death(), 1);
        break;
    case state::connecting:
        break;
    }
    stop_after_loss_ = true;
    state_ = state::stopping;
    transport_.disconnect(false);
}

std::uint64_t node::next_seq() noexcept {
    seq_ = static_cast<std::uint8_t>(seq_ + 1U);
    return seq_;
}

bool node::send(const std::string& t, const payload& p, int qos) {
    if (transport_.publish(t, encode(p), qos, false))
        return true;
    ++counters_.publish_failures;
    return false;
}

void node::on_connected() {
    if (state_ != state::connecting)
        return;
    link_up_ = true;
    say("connected (bdSeq " + std::to_string(bdseq_) + ")");
    transport_.subscribe(topic("NCMD"), 1);
    transport_.subscribe(topic("DCMD", "+"), 1);
    if (config_.primary_host) {
        state_ = state::waiting_host;
        transport_.subscribe(std::string{namespace_v} + "/STATE/" + *config_.primary_host, 1);
        transport_.subscribe("STATE/" + *config_.primary_host, 1);
        say("waiting for primary host " + *config_.primary_host + " to be online");
    } else {
        births();
    }
}

void node::on_connection_lost(const std::string& why) {
    if (state_ == state::stopped)
        return;
    if (stop_after_loss_) {
        link_up_ = false;
        state_ = state::stopped;
        say("stopped: " + why);
        return;
    }
    say("not connected: " + why);
    if (link_up_) {
        link_up_ = false;
        for (auto& [id, d] : devices_)
            d->connection_lost();
    }
    connect();
}

void node::births() {
    state_ = state::online;
    ++counters_.births;
    payload nb;
    nb.timestamp_ms = now_ms_();
    seq_ = 0;
    nb.seq = 0;
    nb.metrics.push_back(make_metric("bdSeq", datatype::uint64, std::uint64_t{bdseq_}, nb.timestamp_ms));
    nb.metrics.push_back(make_metric(std::string{rebirth_metric}, datatype::boolean, false, nb.timestamp_ms));
    if (journal_ != nullptr)
        nb.metrics.push_back(make_metric("Store/Dropped", datatype::uint64, journal_->dropped(), nb.timestamp_ms));
    for (std::size_t i = 1; i < nb.metrics.size(); ++i)  // bdSeq by name: NDEATH carries it so
        apply_alias({}, nb.metrics[i], true);
    send(topic("NBIRTH"), nb);
    for (auto& [id, d] : devices_)
        birth_of(id, *d);
}

void node::birth_of(const std::string& id, device& d) {
    payload p;
    p.timestamp_ms = now_ms_();
    p.metrics = d.birth_metrics();
    for (auto& m : p.metrics) {
        if (!m.timestamp_ms)
            m.timestamp_ms = p.timestamp_ms;
        apply_alias(id, m, true);
    }
    p.seq = next_seq();
    send(topic("DBIRTH", id), p);
}

void node::rebirth() {
    if (state_ != state::online)
        return;
    say("rebirth");
    births();
}

void node::add_device(const std::string& id, device& d) {
    validate_id("device ID", id);
    if (!devices_.emplace(id, &d).second)
        throw io::invalid_argument("device ID '" + id + "' is used twice");
    if (state_ == state::online)
        birth_of(id, d);
}

void node::remove_device(const std::string& id) {
    if (devices_.erase(id) == 0 || state_ != state::online)
        return;
    payload p;
    p.timestamp_ms = now_ms_();
    p.seq = next_seq();
    send(topic("DDEATH", id), p);
}

void node::device_data(const std::string& id, std::vector<metric> metrics) {
    if (metrics.empty())
        return;
    if (devices_.find(id) == devices_.end()) {
        counters_.dropped_offline += metrics.size();
        return;
    }
    const auto now = now_ms_();
    for (auto& m : metrics)
        if (!m.timestamp_ms)
            m.timestamp_ms = now;
    if (state_ != state::online) {
        journal_or_drop(id, std::move(metrics));
        return;
    }
    const auto sent = publish_data(id, metrics, false);
    if (sent < metrics.size())
        journal_or_drop(id, std::vector<metric>(std::make_move_iterator(metrics.begin() + static_cast<std::ptrdiff_t>(sent)),
                                                std::make_move_iterator(metrics.end())));
}

void node::journal_or_drop(const std::string& id, std::vector<metric> metrics) {
    if (journal_ == nullptr) {
        counters_.dropped_offline += metrics.size();
        return;
    }
    try {
        journal_->push(id, metrics);
    } catch (const std::exception& e) {
        // A full disk must not stop the I/O side: count, say, go on.
        counters_.dropped_offline += metrics.size();
        say(std::string{"journal: "} + e.what());
    }
}

std::size_t node::publish_data(const std::string& id, std::vector<metric> metrics, bool historical) {
    const auto now = now_ms_();
    const auto t = topic("DDATA", id);
    std::size_t sent = 0;
    for (std::size_t first = 0; first < metrics.size(); first += config_.max_metrics_per_message) {
        const auto last = std::min(metrics.size(), first + config_.max_metrics_per_message);
        payload p;
        p.timestamp_ms = now;
        p.metrics.assign(std::make_move_iterator(metrics.begin() + static_cast<std::ptrdiff_t>(first)),
                         std::make_move_iterator(metrics.begin() + static_cast<std::ptrdiff_t>(last)));
        for (auto& m : p.metrics) {
            if (!m.timestamp_ms)
                m.timestamp_ms = now;
            m.is_historical = historical;
            apply_alias(id, m, false);
        }
        p.seq = next_seq();
        if (!send(t, p))
            break;
        ++counters_.data_messages;
        if (historical)
            counters_.historical += p.metrics.size();
        sent = last;
    }
    return sent;
}

std::size_t node::replay(std::size_t max) {
    if (state_ != state::online || journal_ == nullptr || journal_->empty() || max == 0)
        return 0;
    const auto entries = journal_->peek(max);
    // Consecutive entries of one device go out together, in journal order;
    // what the transport refuses stays for the next time.
    std::size_t done = 0;
    while (done < entries.size()) {
        std::size_t end = done;
        std::vector<metric> group;
        while (end < entries.size() && entries[end].device_id == entries[done].device_id)
            group.push_back(entries[end++].m);
        if (devices_.find(entries[done].device_id) == devices_.end()) {
            counters_.dropped_offline += group.size();
        } else {
            const auto sent = publish_data(entries[done].device_id, std::move(group), true);
            if (done + sent < end) {
                done += sent;
                break;
            }
        }
        done = end;
    }
    journal_->drop_front(done);
    return done;
}

void node::on_message(const std::string& t, const std::string& body) {
    if (config_.primary_host &&
        (t == std::string{namespace_v} + "/STATE/" + *config_.primary_host || t == "STATE/" + *config_.primary_host)) {
        handle_state(body);
        return;
    }
    if (t == topic("NCMD")) {
        handle_ncmd(body);
        return;
    }
    const auto prefix = topic("DCMD") + "/";
    if (t.size() > prefix.size() && t.compare(0, prefix.size(), prefix) == 0) {
        handle_dcmd(t.substr(prefix.size()), body);
        return;
    }
}

void node::handle_state(const std::string& body) {
    const auto st = parse_host_state(body);
    if (!st) {
        ++counters_.malformed_messages;
        say("primary host STATE not understood; ignored");
        return;
    }
    if (st->timestamp_ms != 0 && st->timestamp_ms < host_timestamp_)
        return;  // an older STATE than the one already seen
    if (st->timestamp_ms != 0)
        host_timestamp_ = st->timestamp_ms;
    host_online_ = st->online;
    if (st->online && state_ == state::waiting_host) {
        say("primary host " + *config_.primary_host + " online");
        births();
    } else if (!st->online && state_ == state::online) {
        say("primary host " + *config_.primary_host + " offline: leaving for the next server");
        send(topic("NDEATH"), death(), 1);
        state_ = state::connecting;
        transport_.disconnect(true);
    }
}

void node::apply_alias(const std::string& device_id, metric& m, bool birth) {
    if (!config_.aliases)
        return;
    auto key = std::make_pair(device_id, m.name);
    auto it = aliases_.find(key);
    if (it == aliases_.end()) {
        if (!birth)
            return;  // not in a birth (cannot happen: births list every metric): by name
        const std::uint64_t alias = aliases_.size();
        it = aliases_.emplace(key, alias).first;
        alias_names_.emplace(alias, std::move(key));
    }
    m.alias = it->second;
    if (!birth)
        m.name.clear();
}

bool node::resolve_alias(const std::string& device_id, metric& m) const {
    if (!m.name.empty() || !m.alias)
        return true;
    const auto it = alias_names_.find(*m.alias);
    if (it == alias_names_.end() || it->second.first != device_id)
        return false;
    m.name = it->second.second;
    return true;
}

bool node::take_command_token() {
    const double rate = config_.commands_per_second;
    if (rate <= 0)
        return true;
    const auto now = now_ms_();
    if (command_tokens_ < 0)
        command_tokens_ = rate;
    else if (now > command_refill_ms_)
        command_tokens_ = std::min(rate, command_tokens_ + static_cast<double>(now - command_refill_ms_) * rate / 1000.0);
    command_refill_ms_ = now;
    if (command_tokens_ < 1)
        return false;
    command_tokens_ -= 1;
    return true;
}

std::optional<payload> node::parse_command(const std::string& body) {
    try {
        return decode(body);
    } catch (const decode_error&) {
        ++counters_.malformed_messages;
        return std::nullopt;
    }
}

void node::handle_ncmd(const std::string& body) {
    auto parsed = parse_command(body);
    if (!parsed)
        return;
    payload& p = *parsed;
    bool rebirth_asked = false;
    for (auto& m : p.metrics) {
        if (!resolve_alias({}, m)) {
            ++counters_.commands_refused;
            continue;
        }
        if (m.name == rebirth_metric && std::holds_alternative<bool>(m.val)) {
            rebirth_asked = rebirth_asked || std::get<bool>(m.val);
        } else {
            ++counters_.commands_refused;
        }
    }
    if (rebirth_asked)
        rebirth();
}

void node::handle_dcmd(const std::string& device_id, const std::string& body) {
    auto parsed = parse_command(body);
    if (!parsed)
        return;
    payload& p = *parsed;
    const auto it = devices_.find(device_id);
    if (state_ != state::online || it == devices_.end() || !config_.commands_enabled) {
        counters_.commands_refused += p.metrics.size();
        if (!config_.commands_enabled)
            say("DCMD for " + device_id + " refused: commands are off ([commands] enabled = false)");
        else if (it == devices_.end())
            say("DCMD for " + device_id + " refused: no such device (not published now)");
        return;
    }
    std::vector<metric> confirmed;
    for (auto& m : p.metrics) {
        if (!resolve_alias(device_id, m)) {
            ++counters_.commands_refused;
            say("DCMD " + device_id + ": alias " + std::to_string(*m.alias) + " refused: no such metric");
            continue;
        }
        if (!take_command_token()) {
            ++counters_.commands_refused;
            ++counters_.commands_rate_limited;
            say("DCMD " + device_id + " '" + m.name + "' refused: more than " +
                std::to_string(config_.commands_per_second) + " writes per second");
            continue;
        }
        const auto status = it->second->write(m, confirmed);
        if (status == device::write_status::done || status == device::write_status::pending) {
            ++counters_.commands_done;
            continue;
        }
        ++counters_.commands_refused;
        static constexpr const char* why[] = {"", "no such metric", "not writable", "wrong datatype or value",
                                              "the write failed"};
        say("DCMD " + device_id + " '" + m.name + "' refused: " + why[static_cast<int>(status)]);
    }
    device_data(device_id, std::move(confirmed));
}

}  // namespace io::gate
