// SPDX-License-Identifier: MIT
// iogate's Sparkplug B edge node without a broker: a recording transport
// stands in for MQTT, a scripted device for a card.
#include <io/error.hpp>
#include <io/gate/node.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace gate = io::gate;

namespace {

struct published {
    std::string topic;
    gate::payload body;
    int qos;
    bool retain;
};

struct recorder final : gate::transport {
    std::vector<gate::will_message> connects;
    std::vector<published> sent;
    std::vector<std::string> subscriptions;
    std::vector<bool> disconnects;  // next_server of each
    bool accept = true;

    void connect(const gate::will_message& w) override { connects.push_back(w); }
    bool publish(const std::string& t, const std::string& p, int qos, bool retain) override {
        if (!accept)
            return false;
        sent.push_back({t, gate::decode(p), qos, retain});
        return true;
    }
    void subscribe(const std::string& t, int) override { subscriptions.push_back(t); }
    void disconnect(bool next) override { disconnects.push_back(next); }
};

struct memory_store final : gate::bdseq_store {
    int last = -1;
    std::uint8_t next() override {
        last = (last + 1) % 256;
        return static_cast<std::uint8_t>(last);
    }
};

struct fake_device final : gate::device {
    bool out = false;
    int losses = 0;
    void connection_lost() override { ++losses; }
    std::vector<gate::metric> birth_metrics() override {
        std::vector<gate::metric> m;
        m.push_back(gate::make_metric("Lines/A0", gate::datatype::boolean, false));
        m.push_back(gate::make_metric("Lines/B0", gate::datatype::boolean, out));
        return m;
    }
    write_status write(const gate::metric& m, std::vector<gate::metric>& confirmed) override {
        if (m.name == "Lines/A0")
            return write_status::not_writable;
        if (m.name != "Lines/B0")
            return write_status::unknown_metric;
        if (!std::holds_alternative<bool>(m.val))
            return write_status::bad_value;
        out = std::get<bool>(m.val);
        confirmed.push_back(gate::make_metric("Lines/B0", gate::datatype::boolean, out));
        return write_status::done;
    }
};

std::string command(const std::string& name, gate::value v, gate::datatype t = gate::datatype::boolean) {
    gate::payload p;
    p.timestamp_ms = 5;
    p.metrics.push_back(gate::make_metric(name, t, std::move(v)));
    return gate::encode(p);
}

std::uint64_t metric_u64(const gate::payload& p, const std::string& name) {
    for (const auto& m : p.metrics)
        if (m.name == name)
            return std::get<std::uint64_t>(m.val);
    throw std::runtime_error("no metric " + name);
}

class gate_node : public ::testing::Test {
protected:
    gate::node_config cfg() {
        gate::node_config c;
        c.group_id = "plant1";
        c.edge_node_id = "node7";
        return c;
    }
    recorder t;
    memory_store store;
    fake_device dev;
    std::uint64_t clock = 1000;
    gate::node make(gate::node_config c) { return gate::node{std::move(c), t, store, [this] { return clock++; }}; }
    // n with card-a, connected and born; the births are not kept in t.sent.
    void bring_online(gate::node& n) {
        n.add_device("card-a", dev);
        n.start();
        n.on_connected();
        t.sent.clear();
    }
    gate::node_config with_commands() {
        auto c = cfg();
        c.commands_enabled = true;
        return c;
    }
};

}  // namespace

TEST_F(gate_node, connect_registers_ndeath_as_will_with_bdseq) {
    auto n = make(cfg());
    n.start();
    ASSERT_EQ(t.connects.size(), 1U);
    EXPECT_EQ(t.connects[0].topic, "spBv1.0/plant1/NDEATH/node7");
    const auto will = gate::decode(t.connects[0].payload);
    ASSERT_EQ(will.metrics.size(), 1U);
    EXPECT_EQ(will.metrics[0].name, "bdSeq");
    EXPECT_EQ(will.metrics[0].type, gate::datatype::uint64);
    EXPECT_EQ(metric_u64(will, "bdSeq"), 0U);
    EXPECT_FALSE(will.seq.has_value());
    EXPECT_TRUE(t.sent.empty());
    EXPECT_EQ(n.current_state(), gate::node::state::connecting);
}

TEST_F(gate_node, births_after_connack_nbirth_then_dbirths) {
    auto n = make(cfg());
    fake_device second;
    n.add_device("card-a", dev);
    n.add_device("card-b", second);
    n.start();
    n.on_connected();
    ASSERT_EQ(t.sent.size(), 3U);
    EXPECT_EQ(t.sent[0].topic, "spBv1.0/plant1/NBIRTH/node7");
    EXPECT_EQ(t.sent[0].body.seq, 0U);
    EXPECT_EQ(t.sent[0].qos, 0);
    EXPECT_FALSE(t.sent[0].retain);
    EXPECT_EQ(metric_u64(t.sent[0].body, "bdSeq"), 0U);
    bool rebirth = false;
    for (const auto& m : t.sent[0].body.metrics)
        if (m.name == "Node Control/Rebirth") {
            rebirth = true;
            EXPECT_EQ(m.type, gate::datatype::boolean);
            EXPECT_EQ(m.val, gate::value{false});
        }
    EXPECT_TRUE(rebirth);
    EXPECT_EQ(t.sent[1].topic, "spBv1.0/plant1/DBIRTH/node7/card-a");
    EXPECT_EQ(t.sent[1].body.seq, 1U);
    EXPECT_EQ(t.sent[2].topic, "spBv1.0/plant1/DBIRTH/node7/card-b");
    EXPECT_EQ(t.sent[2].body.seq, 2U);
    for (const auto& m : t.sent[1].body.metrics)
        EXPECT_TRUE(m.timestamp_ms.has_value()) << m.name;
    EXPECT_NE(std::find(t.subscriptions.begin(), t.subscriptions.end(), "spBv1.0/plant1/NCMD/node7"),
              t.subscriptions.end());
    EXPECT_NE(std::find(t.subscriptions.begin(), t.subscriptions.end(), "spBv1.0/plant1/DCMD/node7/+"),
              t.subscriptions.end());
    EXPECT_EQ(n.current_state(), gate::node::state::online);
}

TEST_F(gate_node, seq_wraps_from_255_to_0) {
    auto n = make(cfg());
    n.add_device("card-a", dev);
    n.start();
    n.on_connected();  // NBIRTH 0, DBIRTH 1
    for (int i = 0; i < 256; ++i)
        n.device_data("card-a", {gate::make_metric("Lines/A0", gate::datatype::boolean, (i % 2) == 0)});
    ASSERT_EQ(t.sent.size(), 258U);
    EXPECT_EQ(t.sent[255].body.seq, 255U);
    EXPECT_EQ(t.sent[256].body.seq, 0U);
    EXPECT_EQ(t.sent[257].body.seq, 1U);
    EXPECT_EQ(t.sent[257].topic, "spBv1.0/plant1/DDATA/node7/card-a");
}

TEST_F(gate_node, data_before_birth_is_dropped_and_counted) {
    auto n = make(cfg());
    n.add_device("card-a", dev);
    n.device_data("card-a", {gate::make_metric("Lines/A0", gate::datatype::boolean, true)});
    n.start();
    n.device_data("card-a", {gate::make_metric("Lines/A0", gate::datatype::boolean, true)});
    EXPECT_TRUE(t.sent.empty());
    EXPECT_EQ(n.counters().dropped_offline, 2U);
}

TEST_F(gate_node, long_batches_are_split_never_dropped) {
    auto c = cfg();
    c.max_metrics_per_message = 4;
    auto n = make(c);
    n.add_device("card-a", dev);
    n.start();
    n.on_connected();
    std::vector<gate::metric> batch;
    for (int i = 0; i < 10; ++i)
        batch.push_back(gate::make_metric("Lines/A0", gate::datatype::boolean, (i % 2) == 0));
    n.device_data("card-a", batch);
    ASSERT_EQ(t.sent.size(), 5U);
    EXPECT_EQ(t.sent[2].body.metrics.size(), 4U);
    EXPECT_EQ(t.sent[3].body.metrics.size(), 4U);
    EXPECT_EQ(t.sent[4].body.metrics.size(), 2U);
    EXPECT_EQ(t.sent[4].body.seq, 4U);
}

TEST_F(gate_node, ncmd_rebirth_publishes_every_birth_again_with_the_same_bdseq) {
    auto n = make(cfg());
    n.add_device("card-a", dev);
    n.start();
    n.on_connected();
    n.device_data("card-a", {gate::make_metric("Lines/A0", gate::datatype::boolean, true)});
    t.sent.clear();
    n.on_message("spBv1.0/plant1/NCMD/node7", command("Node Control/Rebirth", true));
    ASSERT_EQ(t.sent.size(), 2U);
    EXPECT_EQ(t.sent[0].topic, "spBv1.0/plant1/NBIRTH/node7");
    EXPECT_EQ(t.sent[0].body.seq, 0U);
    EXPECT_EQ(metric_u64(t.sent[0].body, "bdSeq"), 0U);
    EXPECT_EQ(t.sent[1].body.seq, 1U);
    EXPECT_EQ(t.connects.size(), 1U);
    // false asks nothing; another group's NCMD is not ours.
    n.on_message("spBv1.0/plant1/NCMD/node7", command("Node Control/Rebirth", false));
    n.on_message("spBv1.0/plant2/NCMD/node7", command("Node Control/Rebirth", true));
    EXPECT_EQ(t.sent.size(), 2U);
}

TEST_F(gate_node, dcmd_is_refused_while_commands_are_off) {
    auto n = make(cfg());
    bring_online(n);
    n.on_message("spBv1.0/plant1/DCMD/node7/card-a", command("Lines/B0", true));
    EXPECT_TRUE(t.sent.empty());
    EXPECT_FALSE(dev.out);
    EXPECT_EQ(n.counters().commands_refused, 1U);
}

TEST_F(gate_node, dcmd_writes_and_ddata_confirms) {
    auto n = make(with_commands());
    bring_online(n);
    n.on_message("spBv1.0/plant1/DCMD/node7/card-a", command("Lines/B0", true));
    EXPECT_TRUE(dev.out);
    ASSERT_EQ(t.sent.size(), 1U);
    EXPECT_EQ(t.sent[0].topic, "spBv1.0/plant1/DDATA/node7/card-a");
    EXPECT_EQ(t.sent[0].body.metrics.at(0).name, "Lines/B0");
    EXPECT_EQ(t.sent[0].body.metrics.at(0).val, gate::value{true});
    EXPECT_EQ(n.counters().commands_done, 1U);
    // Not writable, unknown, wrong type, unknown device: refused, nothing sent.
    n.on_message("spBv1.0/plant1/DCMD/node7/card-a", command("Lines/A0", true));
    n.on_message("spBv1.0/plant1/DCMD/node7/card-a", command("Lines/Z9", true));
    n.on_message("spBv1.0/plant1/DCMD/node7/card-a", command("Lines/B0", std::string{"on"}, gate::datatype::string));
    n.on_message("spBv1.0/plant1/DCMD/node7/card-x", command("Lines/B0", false));
    EXPECT_EQ(t.sent.size(), 1U);
    EXPECT_TRUE(dev.out);
    EXPECT_EQ(n.counters().commands_refused, 4U);
}

TEST_F(gate_node, commands_beyond_the_rate_are_refused_and_counted) {
    auto c = with_commands();
    c.commands_per_second = 5;
    auto n = make(c);
    bring_online(n);
    for (int i = 0; i < 8; ++i)  // the test's clock moves 1 ms per reading
        n.on_message("spBv1.0/plant1/DCMD/node7/card-a", command("Lines/B0", i % 2 == 0));
    EXPECT_EQ(n.counters().commands_done, 5U);
    EXPECT_EQ(n.counters().commands_rate_limited, 3U);
    EXPECT_EQ(t.sent.size(), 5U);  // a confirmation per write done
    clock += 1000;                 // a second later the bucket is full again
    n.on_message("spBv1.0/plant1/DCMD/node7/card-a", command("Lines/B0", true));
    EXPECT_EQ(n.counters().commands_done, 6U);
    EXPECT_TRUE(dev.out);
}

TEST_F(gate_node, garbage_commands_are_counted_and_survived) {
    auto n = make(with_commands());
    bring_online(n);
    std::mt19937 rng{7};
    for (int i = 0; i < 1000; ++i) {
        std::string s(1 + rng() % 40, '\0');
        for (auto& ch : s)
            ch = static_cast<char>(rng());
        n.on_message(i % 2 == 0 ? "spBv1.0/plant1/DCMD/node7/card-a" : "spBv1.0/plant1/NCMD/node7", s);
    }
    EXPECT_GT(n.counters().malformed_messages, 500U);
    EXPECT_EQ(n.current_state(), gate::node::state::online);
    // Still answers a good one.
    n.on_message("spBv1.0/plant1/DCMD/node7/card-a", command("Lines/B0", true));
    EXPECT_TRUE(dev.out);
}

TEST_F(gate_node, clean_stop_publishes_ndeath_then_disconnects) {
    auto n = make(cfg());
    n.start();
    n.on_connected();
    t.sent.clear();
    n.stop();
    ASSERT_EQ(t.sent.size(), 1U);
    EXPECT_EQ(t.sent[0].topic, "spBv1.0/plant1/NDEATH/node7");
    EXPECT_EQ(t.sent[0].qos, 1);
    EXPECT_FALSE(t.sent[0].body.seq.has_value());
    EXPECT_EQ(metric_u64(t.sent[0].body, "bdSeq"), 0U);
    ASSERT_EQ(t.disconnects.size(), 1U);
    EXPECT_FALSE(t.disconnects[0]);
    EXPECT_EQ(n.current_state(), gate::node::state::stopping);
    n.on_connection_lost("disconnected");
    EXPECT_EQ(n.current_state(), gate::node::state::stopped);
    EXPECT_EQ(t.connects.size(), 1U);  // no reconnect after a stop
}

TEST_F(gate_node, a_lost_connection_reconnects_with_the_next_bdseq) {
    store.last = 254;
    auto n = make(cfg());
    n.start();
    EXPECT_EQ(n.bdseq(), 255U);
    n.on_connected();
    n.on_connection_lost("broker went away");
    ASSERT_EQ(t.connects.size(), 2U);
    EXPECT_EQ(n.bdseq(), 0U);  // wraps
    EXPECT_EQ(metric_u64(gate::decode(t.connects[1].payload), "bdSeq"), 0U);
    n.on_connected();
    EXPECT_EQ(metric_u64(t.sent.back().body, "bdSeq"), 0U);
    EXPECT_EQ(t.sent.back().body.seq, 0U);
}

TEST_F(gate_node, births_wait_for_the_primary_host) {
    auto c = cfg();
    c.primary_host = "scada";
    auto n = make(c);
    n.add_device("card-a", dev);
    n.start();
    n.on_connected();
    EXPECT_TRUE(t.sent.empty());
    EXPECT_EQ(n.current_state(), gate::node::state::waiting_host);
    EXPECT_NE(std::find(t.subscriptions.begin(), t.subscriptions.end(), "spBv1.0/STATE/scada"), t.subscriptions.end());
    n.on_message("spBv1.0/STATE/scada", R"({"online":false,"timestamp":10})");
    EXPECT_TRUE(t.sent.empty());
    n.on_message("spBv1.0/STATE/other", R"({"online":true,"timestamp":11})");
    EXPECT_TRUE(t.sent.empty());
    n.on_message("spBv1.0/STATE/scada", R"({"online":true,"timestamp":12})");
    ASSERT_EQ(t.sent.size(), 2U);
    EXPECT_EQ(t.sent[0].topic, "spBv1.0/plant1/NBIRTH/node7");
    // An older STATE changes nothing.
    n.on_message("spBv1.0/STATE/scada", R"({"online":false,"timestamp":11})");
    EXPECT_EQ(n.current_state(), gate::node::state::online);
    // Offline: NDEATH, then off to the next server with a new bdSeq.
    n.on_message("spBv1.0/STATE/scada", R"({"online":false,"timestamp":13})");
    ASSERT_EQ(t.sent.size(), 3U);
    EXPECT_EQ(t.sent[2].topic, "spBv1.0/plant1/NDEATH/node7");
    ASSERT_EQ(t.disconnects.size(), 1U);
    EXPECT_TRUE(t.disconnects[0]);
    n.on_connection_lost("disconnected on request");
    EXPECT_EQ(t.connects.size(), 2U);
    EXPECT_EQ(n.bdseq(), 1U);
    // The next server has its own retained STATE, older than the last one seen.
    n.on_connected();
    n.on_message("spBv1.0/STATE/scada", R"({"online":true,"timestamp":5})");
    EXPECT_EQ(n.current_state(), gate::node::state::online);
    EXPECT_EQ(t.sent.back().topic, "spBv1.0/plant1/DBIRTH/node7/card-a");
}

TEST_F(gate_node, sparkplug_2_2_host_state) {
    auto c = cfg();
    c.primary_host = "scada";
    auto n = make(c);
    n.start();
    n.on_connected();
    n.on_message("STATE/scada", "OFFLINE");
    EXPECT_TRUE(t.sent.empty());
    n.on_message("STATE/scada", "ONLINE");
    EXPECT_EQ(t.sent.size(), 1U);
    n.on_message("STATE/scada", "maybe");
    EXPECT_EQ(n.counters().malformed_messages, 1U);
}

TEST_F(gate_node, devices_added_and_removed_while_online) {
    auto n = make(cfg());
    n.start();
    n.on_connected();
    n.add_device("card-a", dev);
    ASSERT_EQ(t.sent.size(), 2U);
    EXPECT_EQ(t.sent[1].topic, "spBv1.0/plant1/DBIRTH/node7/card-a");
    n.remove_device("card-a");
    ASSERT_EQ(t.sent.size(), 3U);
    EXPECT_EQ(t.sent[2].topic, "spBv1.0/plant1/DDEATH/node7/card-a");
    EXPECT_EQ(t.sent[2].body.seq, 2U);
    EXPECT_THROW(n.add_device("a/b", dev), io::invalid_argument);
}

TEST(gate_ids, separators_and_wildcards_are_refused) {
    EXPECT_NO_THROW(gate::validate_id("group_id", "plant-1.hall_2"));
    for (const char* bad : {"", "a/b", "a+b", "a#", "x\ny"})
        EXPECT_THROW(gate::validate_id("group_id", bad), io::invalid_argument) << bad;
    recorder t;
    memory_store s;
    gate::node_config c;
    c.group_id = "g";
    c.edge_node_id = "e/1";
    EXPECT_THROW((gate::node{c, t, s}), io::invalid_argument);
    c.edge_node_id = "e1";
    c.primary_host = "h#";
    EXPECT_THROW((gate::node{c, t, s}), io::invalid_argument);
}

TEST(gate_host_state, json_and_2_2) {
    auto s = gate::parse_host_state(R"( {"online" : true, "timestamp": 1700000000000} )");
    ASSERT_TRUE(s);
    EXPECT_TRUE(s->online);
    EXPECT_EQ(s->timestamp_ms, 1700000000000U);
    s = gate::parse_host_state(R"({"timestamp":5,"online":false,"extra":"x"})");
    ASSERT_TRUE(s);
    EXPECT_FALSE(s->online);
    EXPECT_TRUE(gate::parse_host_state("ONLINE")->online);
    EXPECT_FALSE(gate::parse_host_state("OFFLINE\n")->online);
    for (const char* bad : {"", "{}", "{\"online\":1}", "{\"online\":true", "online", "{\"online\":true} x"})
        EXPECT_FALSE(gate::parse_host_state(bad)) << bad;
}

TEST(gate_bdseq_file, starts_at_0_counts_up_wraps_and_refuses_garbage) {
    const auto dir = std::filesystem::temp_directory_path() / ("gate_bdseq_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto path = (dir / "state").string();
    gate::file_bdseq_store s{path};
    EXPECT_FALSE(s.last());
    EXPECT_EQ(s.next(), 0U);
    EXPECT_EQ(s.next(), 1U);
    EXPECT_EQ(gate::file_bdseq_store{path}.last(), 1U);  // another run reads it
    std::ofstream(path) << "bdSeq 255\n";
    EXPECT_EQ(s.next(), 0U);
    std::ofstream(path) << "bdSeq 300\n";
    EXPECT_THROW(s.next(), io::invalid_argument);
    std::ofstream(path) << "garbage";
    try {
        s.next();
        ADD_FAILURE() << "no error";
    } catch (const io::invalid_argument& e) {
        EXPECT_NE(std::string{e.what()}.find(path), std::string::npos) << e.what();
    }
    std::filesystem::remove_all(dir);
}

TEST_F(gate_node, data_while_away_is_journaled_and_replayed_as_historical_after_births) {
    gate::journal j{"", 3};
    auto n = make(cfg());
    n.set_journal(&j);
    n.add_device("card-a", dev);
    n.start();
    for (int i = 0; i < 5; ++i)  // not connected yet: the newest 3 are kept
        n.device_data("card-a", {gate::make_metric("Lines/A0", gate::datatype::boolean, i % 2 == 0,
                                                   std::uint64_t{100} + static_cast<std::uint64_t>(i))});
    EXPECT_EQ(j.size(), 3U);
    EXPECT_EQ(j.dropped(), 2U);
    EXPECT_EQ(n.replay(10), 0U);  // not online: nothing goes out
    EXPECT_TRUE(t.sent.empty());
    n.on_connected();
    ASSERT_EQ(t.sent.size(), 2U);  // births first
    EXPECT_EQ(metric_u64(t.sent[0].body, "Store/Dropped"), 2U);
    // Live data is not held behind the journal.
    n.device_data("card-a", {gate::make_metric("Lines/A0", gate::datatype::boolean, true, 900)});
    ASSERT_EQ(t.sent.size(), 3U);
    EXPECT_FALSE(t.sent[2].body.metrics[0].is_historical);
    EXPECT_EQ(n.replay(2), 2U);
    EXPECT_EQ(n.replay(2), 1U);
    EXPECT_EQ(n.replay(2), 0U);
    ASSERT_EQ(t.sent.size(), 5U);
    std::vector<std::uint64_t> stamps;
    for (std::size_t i = 3; i < 5; ++i) {
        EXPECT_EQ(t.sent[i].topic, "spBv1.0/plant1/DDATA/node7/card-a");
        for (const auto& m : t.sent[i].body.metrics) {
            EXPECT_TRUE(m.is_historical);
            stamps.push_back(*m.timestamp_ms);
        }
    }
    EXPECT_EQ(stamps, (std::vector<std::uint64_t>{102, 103, 104}));
    EXPECT_EQ(n.counters().historical, 3U);
    EXPECT_EQ(t.sent[4].body.seq, 4U);
}

TEST(gate_journal, keeps_the_newest_on_disk_across_a_restart) {
    const auto dir = std::filesystem::temp_directory_path() / ("gate_journal_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const auto path = (dir / "journal").string();
    {
        gate::journal j{path, 4};
        for (int i = 0; i < 6; ++i)
            j.push(i % 2 == 0 ? "card-a" : "card-b",
                   {gate::make_metric("Lines/A0", gate::datatype::boolean, true, std::uint64_t{10} + unsigned(i))});
        EXPECT_EQ(j.dropped(), 2U);
        const auto first = j.take(1);
        ASSERT_EQ(first.size(), 1U);
        EXPECT_EQ(first[0].device_id, "card-a");
        EXPECT_EQ(first[0].m.timestamp_ms, 12U);
    }
    gate::journal again{path, 4};
    ASSERT_EQ(again.size(), 3U);
    EXPECT_EQ(again.dropped(), 2U);
    const auto rest = again.take(10);
    EXPECT_EQ(rest[0].device_id, "card-b");
    EXPECT_EQ(rest[0].m.timestamp_ms, 13U);
    EXPECT_EQ(rest[2].m.timestamp_ms, 15U);
    EXPECT_TRUE(gate::journal(path, 4).empty());  // taken is gone from the file too
    // A smaller bound on restart keeps the newest.
    {
        gate::journal j{path, 10};
        for (int i = 0; i < 5; ++i)
            j.push("card-a", {gate::make_metric("x", gate::datatype::uint64, std::uint64_t(i))});
    }
    gate::journal small{path, 2};
    EXPECT_EQ(small.dropped(), 2U + 3U);
    EXPECT_EQ(small.take(1).at(0).m.val, gate::value{std::uint64_t{3}});
    // An append cut short (power loss) loses that append only.
    {
        gate::journal j{path, 10};
        (void)j.take(10);
        j.push("card-a", {gate::make_metric("x", gate::datatype::uint64, std::uint64_t{7})});
        j.push("card-a", {gate::make_metric("x", gate::datatype::uint64, std::uint64_t{8})});
    }
    std::filesystem::resize_file(path, std::filesystem::file_size(path) - 3);
    gate::journal torn{path, 10};
    ASSERT_EQ(torn.size(), 1U);
    EXPECT_EQ(torn.take(1).at(0).m.val, gate::value{std::uint64_t{7}});
    std::ofstream(path) << "not a journal";
    EXPECT_THROW(gate::journal(path, 4), io::invalid_argument);
    std::filesystem::remove_all(dir);
}

TEST_F(gate_node, data_the_transport_refuses_goes_to_the_journal_and_stays_until_sent) {
    gate::journal j{"", 100};
    auto n = make(cfg());
    n.set_journal(&j);
    bring_online(n);
    t.accept = false;  // the connection just went; the node does not know yet
    n.device_data("card-a", {gate::make_metric("Lines/A0", gate::datatype::boolean, true, 7)});
    EXPECT_EQ(j.size(), 1U);
    EXPECT_EQ(n.replay(10), 0U);  // still refused: kept
    EXPECT_EQ(j.size(), 1U);
    t.accept = true;
    EXPECT_EQ(n.replay(10), 1U);
    EXPECT_TRUE(j.empty());
    ASSERT_EQ(t.sent.size(), 1U);
    EXPECT_TRUE(t.sent[0].body.metrics.at(0).is_historical);
    EXPECT_EQ(t.sent[0].body.metrics.at(0).timestamp_ms, 7U);
}

TEST_F(gate_node, devices_hear_of_a_lost_broker_but_not_of_a_clean_stop) {
    auto n = make(cfg());
    bring_online(n);
    n.on_connection_lost("gone");
    EXPECT_EQ(dev.losses, 1);
    n.on_connection_lost("the next attempt failed too");  // never connected since
    EXPECT_EQ(dev.losses, 1);
    n.on_connected();
    n.stop();
    n.on_connection_lost("disconnected on request");
    EXPECT_EQ(dev.losses, 1);
}

TEST_F(gate_node, aliases_births_carry_name_and_alias_data_and_commands_the_alias) {
    auto c = with_commands();
    c.aliases = true;
    auto n = make(c);
    fake_device second;
    n.add_device("card-a", dev);
    n.add_device("card-b", second);
    n.start();
    n.on_connected();
    ASSERT_EQ(t.sent.size(), 3U);
    std::map<std::uint64_t, std::string> seen;  // alias -> device/name: unique in the node
    for (const auto& msg : t.sent)
        for (const auto& m : msg.body.metrics) {
            EXPECT_FALSE(m.name.empty());
            if (m.name == "bdSeq") {
                EXPECT_FALSE(m.alias.has_value()) << "NDEATH names bdSeq; its birth does too";
                continue;
            }
            ASSERT_TRUE(m.alias.has_value()) << m.name;
            EXPECT_TRUE(seen.emplace(*m.alias, msg.topic + "/" + m.name).second) << "alias used twice: " << *m.alias;
        }
    std::uint64_t b0 = 0, a_b0_of_b = 0;
    for (const auto& m : t.sent[1].body.metrics)
        if (m.name == "Lines/B0")
            b0 = *m.alias;
    for (const auto& m : t.sent[2].body.metrics)
        if (m.name == "Lines/B0")
            a_b0_of_b = *m.alias;
    EXPECT_NE(b0, a_b0_of_b);
    t.sent.clear();
    // A DCMD by alias writes; the DDATA confirming it carries the alias only.
    gate::payload cmd;
    auto m = gate::make_metric("", gate::datatype::boolean, true);
    m.alias = b0;
    cmd.metrics.push_back(m);
    n.on_message("spBv1.0/plant1/DCMD/node7/card-a", gate::encode(cmd));
    EXPECT_TRUE(dev.out);
    ASSERT_EQ(t.sent.size(), 1U);
    ASSERT_EQ(t.sent[0].body.metrics.size(), 1U);
    EXPECT_TRUE(t.sent[0].body.metrics[0].name.empty());
    EXPECT_EQ(t.sent[0].body.metrics[0].alias, b0);
    // Another device's alias, or an unknown one, is refused; a name still works.
    const auto refused = n.counters().commands_refused;
    cmd.metrics[0].alias = a_b0_of_b;
    n.on_message("spBv1.0/plant1/DCMD/node7/card-a", gate::encode(cmd));
    cmd.metrics[0].alias = 999;
    n.on_message("spBv1.0/plant1/DCMD/node7/card-a", gate::encode(cmd));
    EXPECT_EQ(n.counters().commands_refused, refused + 2);
    EXPECT_FALSE(second.out);
    n.on_message("spBv1.0/plant1/DCMD/node7/card-a", command("Lines/B0", false));
    EXPECT_FALSE(dev.out);
    // A rebirth keeps the aliases.
    t.sent.clear();
    n.rebirth();
    for (const auto& mm : t.sent[1].body.metrics) {
        if (mm.name == "Lines/B0") {
            EXPECT_EQ(mm.alias, b0);
        }
    }
}
