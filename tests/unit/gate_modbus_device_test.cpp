// SPDX-License-Identifier: MIT
// io::gate::modbus_device on a real io::modbus_module over Modbus/TCP on
// 127.0.0.1, whose far end is iogate's own Modbus/TCP server on the same
// event loop, serving lines held in memory as a SeaI/O-520 (8 inputs, 8
// outputs): the loop must never be held by the device, or the server could
// not answer. Births, edges from polling with their properties, writes
// confirmed later, the checks shared with cards, a module that stops
// answering and comes back, and one that never answers.
#include <io/error.hpp>
#include <io/event_loop.hpp>
#include <io/gate/card_device.hpp>
#include <io/gate/modbus_device.hpp>
#include <io/gate/modbus_server.hpp>
#include <io/modbus.hpp>

#include "loop_until.hpp"
#include "memory_lines.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <optional>

using namespace std::chrono_literals;
namespace gate = io::gate;

namespace {

constexpr auto guard = std::chrono::seconds{20};  // only against a hang

std::uint64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000U + static_cast<std::uint64_t>(ts.tv_nsec);
}

const gate::metric* find(const std::vector<gate::metric>& ms, const std::string& name) {
    for (const auto& m : ms)
        if (m.name == name)
            return &m;
    return nullptr;
}

std::optional<std::uint64_t> prop(const gate::metric& m, const std::string& key) {
    for (const auto& p : m.properties)
        if (p.key == key && std::holds_alternative<std::uint64_t>(p.val))
            return std::get<std::uint64_t>(p.val);
    return std::nullopt;
}

gate::metric command(const std::string& name, gate::value v) {
    gate::metric m;
    m.name = name;
    m.val = std::move(v);
    return m;
}

// A 520's lines: inputs at offsets 0..7 (discrete inputs), outputs at 8..15
// (coils, writable by Modbus clients).
struct module_520 {
    io::test::memory_lines lines;
    std::unique_ptr<gate::register_map> map;
    module_520() {
        std::vector<gate::unit_line> ls;
        for (unsigned i = 0; i < 8; ++i)
            ls.push_back({i, "DI" + std::to_string(i), false, false});
        for (unsigned i = 0; i < 8; ++i)
            ls.push_back({8 + i, "DO" + std::to_string(i), true, true});
        map = std::make_unique<gate::register_map>(ls, std::vector<gate::unit_port>{}, lines);
    }
};

class gate_modbus_device : public ::testing::Test {
protected:
    io::event_loop loop;
    module_520 far;
    gate::modbus_server server{{"127.0.0.1", 0, 8, std::chrono::milliseconds{60000}}, loop};
    std::optional<io::modbus_bus> bus;
    std::optional<io::modbus_module> module;
    std::vector<std::vector<gate::metric>> data;
    std::vector<std::pair<bool, std::string>> presence;
    std::vector<std::string> logged;

    void SetUp() override {
        server.set_unit(1, far.map.get());
        bus.emplace("modbus-tcp://127.0.0.1:" + std::to_string(server.port()) + "?timeout=300&retries=0");
        module.emplace(*bus, 1, "520");
    }

    std::unique_ptr<gate::modbus_device> make(std::vector<std::string> writable = {"DO1", "DO2"}) {
        auto d = std::make_unique<gate::modbus_device>(
            *module, 10ms, writable, loop, [this](std::vector<gate::metric> m) { data.push_back(std::move(m)); },
            [this](bool present, const std::string& why) { presence.emplace_back(present, why); });
        d->log = [this](const std::string& t) { logged.push_back(t); };
        return d;
    }

    template <typename P>
    void run_until(P done, const char* what) {
        io::test::run_loop_until(loop, done, what, guard);
    }
};

}  // namespace

TEST_F(gate_modbus_device, birth_after_the_first_answered_poll) {
    far.lines.levels[2] = true;   // DI2
    far.lines.levels[9] = true;   // DO1
    auto d = make();
    EXPECT_FALSE(d->published());
    run_until([&] { return !presence.empty(); }, "the device's presence");
    ASSERT_EQ(presence.size(), 1U);
    EXPECT_TRUE(presence[0].first);
    EXPECT_TRUE(d->published());
    const auto b = d->birth_metrics();
    std::vector<std::string> names;
    for (const auto& m : b)
        names.push_back(m.name);
    std::vector<std::string> want;
    for (int i = 0; i < 8; ++i)
        want.push_back("Lines/DI" + std::to_string(i));
    for (int i = 0; i < 8; ++i)
        want.push_back("Lines/DO" + std::to_string(i));
    want.emplace_back("Ports/DI");
    want.emplace_back("Lost events");
    EXPECT_EQ(names, want);
    for (std::size_t i = 0; i < 16; ++i) {
        EXPECT_EQ(b[i].type, gate::datatype::boolean) << b[i].name;
        EXPECT_EQ(std::get<bool>(b[i].val), i == 2 || i == 9) << b[i].name;
        EXPECT_EQ(prop(b[i], "Quality"), 192U) << b[i].name;
    }
    EXPECT_EQ(find(b, "Ports/DI")->type, gate::datatype::uint8);  // 8 inputs, as a card's port
    EXPECT_EQ(std::get<std::uint64_t>(find(b, "Ports/DI")->val), 0b100U);
    EXPECT_EQ(find(b, "Lost events")->type, gate::datatype::uint64);
    EXPECT_TRUE(data.empty());
}

TEST_F(gate_modbus_device, edges_carry_the_poll_time_and_sequence_numbers) {
    auto d = make();
    run_until([&] { return d->published(); }, "the birth");
    const auto before = monotonic_ns();
    far.lines.levels[4] = true;
    run_until([&] { return !data.empty(); }, "an edge");
    const auto after = monotonic_ns();
    ASSERT_EQ(data.size(), 1U);
    const auto* di4 = find(data[0], "Lines/DI4");
    ASSERT_NE(di4, nullptr);
    EXPECT_TRUE(std::get<bool>(di4->val));
    const auto ts_ns = prop(*di4, "timestamp_ns");
    ASSERT_TRUE(ts_ns);
    EXPECT_GE(*ts_ns, before);
    EXPECT_LE(*ts_ns, after);
    EXPECT_EQ(prop(*di4, "line_seqno"), 1U);
    EXPECT_TRUE(prop(*di4, "seqno"));
    ASSERT_TRUE(di4->timestamp_ms);
    // The metric's timestamp is the poll's, in UTC ms (to the ms the two
    // clocks' offset is read with).
    const auto utc = static_cast<std::int64_t>(gate::monotonic_to_utc_ms(*ts_ns, gate::monotonic_to_utc_offset_ns()));
    EXPECT_LE(std::llabs(static_cast<std::int64_t>(*di4->timestamp_ms) - utc), 1);
    ASSERT_NE(find(data[0], "Ports/DI"), nullptr);
    EXPECT_EQ(std::get<std::uint64_t>(find(data[0], "Ports/DI")->val), 0b10000U);
    far.lines.levels[4] = false;
    run_until([&] { return data.size() == 2; }, "the falling edge");
    EXPECT_FALSE(std::get<bool>(find(data[1], "Lines/DI4")->val));
    EXPECT_EQ(prop(*find(data[1], "Lines/DI4"), "line_seqno"), 2U);
}

TEST_F(gate_modbus_device, writes_are_pending_then_confirmed_by_data) {
    auto d = make();
    run_until([&] { return d->published(); }, "the birth");
    std::vector<gate::metric> confirmed;
    EXPECT_EQ(d->write(command("Lines/DO2", true), confirmed), gate::device::write_status::pending);
    EXPECT_TRUE(confirmed.empty());
    EXPECT_FALSE(far.lines.levels[10]) << "the server on this loop has not run since";
    run_until([&] { return !data.empty(); }, "the confirmation");
    ASSERT_EQ(data[0].size(), 1U);
    EXPECT_EQ(data[0][0].name, "Lines/DO2");
    EXPECT_TRUE(std::get<bool>(data[0][0].val));
    EXPECT_TRUE(far.lines.levels[10]);
    EXPECT_TRUE(std::get<bool>(find(d->birth_metrics(), "Lines/DO2")->val));

    // The checks cards make: only listed outputs, Boolean values, known names.
    using ws = gate::device::write_status;
    EXPECT_EQ(d->write(command("Lines/DO0", true), confirmed), ws::not_writable);
    EXPECT_EQ(d->write(command("Lines/DI0", true), confirmed), ws::not_writable);
    EXPECT_EQ(d->write(command("Ports/DI", std::uint64_t{1}), confirmed), ws::not_writable);
    EXPECT_EQ(d->write(command("Lost events", std::uint64_t{0}), confirmed), ws::not_writable);
    EXPECT_EQ(d->write(command("Lines/DO9", true), confirmed), ws::unknown_metric);
    EXPECT_EQ(d->write(command("Ports/DO", std::uint64_t{1}), confirmed), ws::unknown_metric);
    EXPECT_EQ(d->write(command("Lines/DO1", std::uint64_t{1}), confirmed), ws::bad_value);
    EXPECT_TRUE(confirmed.empty());
    for (int i = 0; i < 20; ++i)
        loop.run_once(5ms);
    EXPECT_EQ(data.size(), 1U);
    EXPECT_FALSE(far.lines.levels[8]);
    EXPECT_FALSE(far.lines.levels[9]);
}

TEST_F(gate_modbus_device, writable_names_must_be_outputs) {
    EXPECT_THROW(make({"DI0"}), io::invalid_argument);
    EXPECT_THROW(make({"DO8"}), io::invalid_argument);
}

TEST_F(gate_modbus_device, a_module_that_stops_answering_is_unpublished_until_it_answers) {
    auto d = make();
    run_until([&] { return d->published(); }, "the birth");
    server.remove_unit(1);  // exception 0A to every request: no valid answer
    run_until([&] { return presence.size() == 2; }, "gone");
    EXPECT_FALSE(presence[1].first);
    EXPECT_NE(presence[1].second.find("gateway path unavailable"), std::string::npos) << presence[1].second;
    EXPECT_FALSE(d->published());
    std::vector<gate::metric> confirmed;
    EXPECT_EQ(d->write(command("Lines/DO1", true), confirmed), gate::device::write_status::failed);
    far.lines.levels[5] = true;   // changed while it was away
    far.lines.levels[15] = true;  // DO7, by someone else
    server.set_unit(1, far.map.get());
    run_until([&] { return presence.size() == 3; }, "back");
    EXPECT_TRUE(presence[2].first);
    const auto b = d->birth_metrics();
    EXPECT_TRUE(std::get<bool>(find(b, "Lines/DI5")->val));
    EXPECT_TRUE(std::get<bool>(find(b, "Lines/DO7")->val));
    EXPECT_EQ(std::get<std::uint64_t>(find(b, "Ports/DI")->val), 0b100000U);
    EXPECT_TRUE(data.empty()) << "the change while away is in the birth, not a DDATA";
    far.lines.levels[5] = false;
    run_until([&] { return !data.empty(); }, "an edge after the return");
    EXPECT_FALSE(std::get<bool>(find(data[0], "Lines/DI5")->val));
}

TEST(gate_modbus_device_silent, a_module_that_never_answers_is_not_published) {
    // A TCP peer that takes connections into its backlog and never answers.
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(s, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(s, 8), 0);
    socklen_t len = sizeof a;
    ASSERT_EQ(::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len), 0);
    io::event_loop loop;
    io::modbus_bus bus("modbus-tcp://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "?timeout=50&retries=0");
    io::modbus_module module(bus, 1, "410");
    std::vector<bool> presence;
    {
        gate::modbus_device d(module, 10ms, {"DO0"}, loop, [](std::vector<gate::metric>) {},
                              [&](bool p, const std::string&) { presence.push_back(p); });
        // Ticks of the loop go on while the device's requests time out.
        unsigned ticks = 0;
        auto tick = loop.call_every(1ms, [&] { ++ticks; });
        io::test::run_loop_until(loop, [&] { return module.polls() >= 3; }, "three polls", guard);
        EXPECT_FALSE(d.published());
        EXPECT_GT(ticks, 0U);
    }
    EXPECT_TRUE(presence.empty());
    ::close(s);
}
