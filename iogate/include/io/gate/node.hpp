// SPDX-License-Identifier: MIT
#pragma once

#include <io/gate/journal.hpp>
#include <io/gate/payload.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace io::gate {

/// Throws io::invalid_argument unless id is a valid Sparkplug ID: not empty,
/// no '+', '/', '#' (MQTT's separators and wildcards), no control characters.
/// `what` names the ID in the message ("group_id").
void validate_id(std::string_view what, std::string_view id);

/// The MQTT Will a CONNECT registers: NDEATH, QoS 1, not retained.
struct will_message {
    std::string topic;
    std::string payload;
};

/// What the node hears from its transport. All calls come on the node's
/// thread (the I/O event loop), never from the network thread.
class transport_listener {
public:
    virtual ~transport_listener() = default;
    /// The broker accepted the CONNECT (CONNACK 0).
    virtual void on_connected() = 0;
    /// The connection attempt failed or an established connection ended;
    /// `why` is for the log. The transport connects again when asked.
    virtual void on_connection_lost(const std::string& why) = 0;
    virtual void on_message(const std::string& topic, const std::string& payload) = 0;
};

/// The node's view of MQTT. Calls come from the node's thread and do not
/// block on the network; the MQTT transport (mqtt_transport.hpp) does the
/// network work in its own thread, tests put a recorder here.
class transport {
public:
    virtual ~transport() = default;
    /// Starts one CONNECT (clean session) with this Will, after the
    /// transport's backoff; the outcome comes back as on_connected() or
    /// on_connection_lost().
    virtual void connect(const will_message& will) = 0;
    /// Queues a PUBLISH; false when it cannot be sent (not connected).
    virtual bool publish(const std::string& topic, const std::string& payload, int qos, bool retain) = 0;
    virtual void subscribe(const std::string& topic, int qos) = 0;
    /// Sends DISCONNECT once the QoS 1 messages published before it are
    /// delivered (or a short grace time passed); on_connection_lost follows.
    /// With next_server, the next CONNECT goes to the next server of the list.
    virtual void disconnect(bool next_server) = 0;
};

/// Where bdSeq lives between runs. next() returns the value for the next
/// CONNECT: one more than the last one handed out (255 wraps to 0), 0 the
/// first time, and keeps it before returning.
class bdseq_store {
public:
    virtual ~bdseq_store() = default;
    virtual std::uint8_t next() = 0;
};

/// bdSeq in a small state file ("bdSeq N"), replaced atomically (write,
/// fsync, rename). A file that holds anything else is an error naming it.
class file_bdseq_store final : public bdseq_store {
public:
    explicit file_bdseq_store(std::string path) : path_{std::move(path)} {}
    std::uint8_t next() override;
    /// The last value handed out, as the file holds it; nullopt without a file.
    std::optional<std::uint8_t> last() const;

private:
    std::string path_;
};

/// One Sparkplug device (a card, a remote module) as the node sees it.
class device {
public:
    virtual ~device() = default;
    /// Every metric the device will ever report, with its current value,
    /// datatype and timestamp, for DBIRTH.
    virtual std::vector<metric> birth_metrics() = 0;

    /// done: written, confirmed in `confirmed`; pending: accepted and sent
    /// on (a remote module's write, which may wait for the bus's timeout);
    /// the device reports the confirmation later as its data (DDATA), or
    /// logs why the write failed.
    enum class write_status { done, unknown_metric, not_writable, bad_value, failed, pending };
    /// A DCMD metric: write it; on done, append the metrics that confirm
    /// the new state (the value read back) to `confirmed`.
    virtual write_status write(const metric& m, std::vector<metric>& confirmed) = 0;

    /// The node lost its broker after it was connected (not on a clean
    /// stop): a device may drive configured outputs to a safe state here.
    /// By default outputs hold their level.
    virtual void connection_lost() {}
};

struct node_config {
    std::string group_id;
    std::string edge_node_id;
    /// The primary host application's ID; births wait for its STATE online.
    std::optional<std::string> primary_host;
    /// DCMD writes outputs only when true (the devices check writability).
    bool commands_enabled = false;
    /// At most this many DCMD writes per second (a burst of as many); the
    /// rest are refused and counted. 0: no limit.
    unsigned commands_per_second = 20;
    /// At most this many metrics per DDATA; longer batches are split.
    std::size_t max_metrics_per_message = 256;
    /// Metric aliases: births carry each metric's name and an alias unique
    /// in the node (bdSeq excepted: NDEATH names it), DDATA the alias only;
    /// DCMD and NCMD metrics may name either.
    bool aliases = false;
};

/// Counters the node keeps (for logs, NBIRTH and tests).
struct node_counters {
    std::uint64_t connects = 0;
    std::uint64_t births = 0;               ///< NBIRTHs published
    std::uint64_t data_messages = 0;        ///< DDATAs published
    std::uint64_t dropped_offline = 0;      ///< metrics not published: no broker or host, no journal
    std::uint64_t historical = 0;           ///< journaled metrics published (is_historical)
    std::uint64_t publish_failures = 0;     ///< the transport refused a PUBLISH
    std::uint64_t commands_done = 0;        ///< DCMD metrics written (or accepted: pending)
    std::uint64_t commands_refused = 0;     ///< DCMD/NCMD metrics refused (off, not writable, unknown, rate)
    std::uint64_t commands_rate_limited = 0;  ///< of those, refused for the rate limit
    std::uint64_t malformed_messages = 0;   ///< NCMD/DCMD/STATE payloads that did not parse
};

/// The Sparkplug B edge node: topics, bdSeq, seq, births, data, commands,
/// death. Runs on one thread (the I/O event loop); the transport and the
/// devices are given to it.
class node final : public transport_listener {
public:
    enum class state {
        stopped,       ///< before start() or after stop() finished
        connecting,    ///< CONNECT sent, no CONNACK yet
        waiting_host,  ///< connected, the primary host is not online
        online,        ///< births published, data flows
        stopping,      ///< NDEATH sent, DISCONNECT pending
    };

    /// Validates the IDs (io::invalid_argument). `now_ms` gives UTC ms.
    node(node_config config, transport& t, bdseq_store& store,
         std::function<std::uint64_t()> now_ms = utc_now_ms);

    /// The first CONNECT.
    void start();
    /// A clean shutdown: NDEATH (when connected), then DISCONNECT. The node
    /// is stopped when on_connection_lost() comes.
    void stop();

    /// Adds a device (DBIRTH if the node is online). `id` is validated;
    /// the device must stay alive until removed.
    void add_device(const std::string& id, device& d);
    /// Removes it (DDEATH if the node is online).
    void remove_device(const std::string& id);
    /// Reports changes of a device's metrics: DDATA when online, else into
    /// the journal (or dropped and counted without one).
    void device_data(const std::string& id, std::vector<metric> metrics);

    /// Store and forward: metrics that cannot be published go here, and
    /// replay() publishes them once the node is online again. The journal's
    /// overflow count is the NBIRTH's "Store/Dropped" metric.
    void set_journal(journal* j) noexcept { journal_ = j; }
    /// When online: publishes up to `max` of the oldest journaled metrics as
    /// DDATA with is_historical and their original timestamps (metrics of
    /// devices that are gone are dropped and counted); what the transport
    /// refuses stays in the journal. Live data that the transport refuses
    /// (the connection just went) goes to the journal too. Call it at the
    /// rate the broker should see them; live data is never held behind it.
    /// Returns how many it took from the journal.
    std::size_t replay(std::size_t max);

    /// Publishes NBIRTH and every DBIRTH again (what NCMD Rebirth asks).
    void rebirth();

    void on_connected() override;
    void on_connection_lost(const std::string& why) override;
    void on_message(const std::string& topic, const std::string& payload) override;

    state current_state() const noexcept { return state_; }
    std::uint8_t bdseq() const noexcept { return bdseq_; }
    const node_counters& counters() const noexcept { return counters_; }
    bool host_online() const noexcept { return host_online_; }

    /// "spBv1.0/GROUP/TYPE/EDGE[/DEVICE]".
    std::string topic(std::string_view type, std::string_view device_id = {}) const;
    /// The payload of this node's NDEATH (for the Will and a clean stop).
    std::string death_payload() const;

    /// Called for log lines (info and warnings); default: none.
    std::function<void(const std::string&)> log;

private:
    void connect();
    payload death() const;
    void births();
    /// DDATA messages of the metrics; returns how many of them went out
    /// (a failed message stops it: the rest are not sent).
    std::size_t publish_data(const std::string& id, std::vector<metric> metrics, bool historical);
    void journal_or_drop(const std::string& id, std::vector<metric> metrics);
    void birth_of(const std::string& id, device& d);
    std::uint64_t next_seq() noexcept;
    bool send(const std::string& topic, const payload& p, int qos = 0);
    void handle_state(const std::string& payload);
    /// A command's payload; nullopt (counted) when it does not decode.
    std::optional<payload> parse_command(const std::string& body);
    bool take_command_token();
    void handle_ncmd(const std::string& payload);
    void handle_dcmd(const std::string& device_id, const std::string& payload);
    void say(const std::string& text) const;
    /// With aliases on: gives the metric its alias (assigned on first sight
    /// in a birth) and, outside births, drops its name.
    void apply_alias(const std::string& device_id, metric& m, bool birth);
    /// A command's metric named by alias only gets its name back; false if
    /// the alias is not one of that device's (or the node's, id empty).
    bool resolve_alias(const std::string& device_id, metric& m) const;

    node_config config_;
    transport& transport_;
    bdseq_store& store_;
    std::function<std::uint64_t()> now_ms_;
    std::map<std::string, device*> devices_;
    journal* journal_ = nullptr;
    state state_ = state::stopped;
    std::uint8_t bdseq_ = 0;
    std::uint8_t seq_ = 0;
    bool host_online_ = false;
    std::uint64_t host_timestamp_ = 0;
    bool stop_after_loss_ = false;
    bool link_up_ = false;  // connected since the last loss
    double command_tokens_ = -1;  // < 0: not started
    std::uint64_t command_refill_ms_ = 0;
    node_counters counters_;
    /// (device ID, "" for the node; metric name) -> alias, and back.
    std::map<std::pair<std::string, std::string>, std::uint64_t> aliases_;
    std::map<std::uint64_t, std::pair<std::string, std::string>> alias_names_;
};

/// The node's state as text ("online", ...).
std::string_view to_string(node::state s) noexcept;

/// A STATE message of a primary host: 3.0's JSON {"online":bool,"timestamp":ms}
/// or 2.2's "ONLINE"/"OFFLINE" (timestamp 0). nullopt when it is neither.
struct host_state {
    bool online = false;
    std::uint64_t timestamp_ms = 0;
};
std::optional<host_state> parse_host_state(std::string_view text);

}  // namespace io::gate
