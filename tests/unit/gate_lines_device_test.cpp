// SPDX-License-Identifier: MIT
// io::gate::lines_device on a line_request whose kernel is a fake behind
// libio's system-call seam: births (values, Quality, a line held elsewhere,
// ports), edges as metrics with their kernel timestamps, lost events, writes
// and a card that goes away.
#include <io/error.hpp>
#include <io/event_loop.hpp>
#include <io/gate/card_device.hpp>

#include "edge_record.hpp"
#include "line_request_access.hpp"
#include "readable_fd.hpp"
#include "sys.hpp"

#include <gtest/gtest.h>

#include <linux/gpio.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <unistd.h>

using namespace std::chrono_literals;
namespace gate = io::gate;

namespace {

// The fake kernel of one request: levels in request order, edge reads.
struct fake_request {
    std::uint64_t levels = 0;
    std::uint64_t sets = 0;
    std::deque<std::vector<gpio_v2_line_event>> reads;
    int errno_when_empty = EAGAIN;
    int ioctl_errno = 0;  // fail every ioctl with this when set
} k;

int fake_ioctl(int, unsigned long req, void* arg) {
    if (k.ioctl_errno != 0) {
        errno = k.ioctl_errno;
        return -1;
    }
    auto* v = static_cast<gpio_v2_line_values*>(arg);
    if (req == GPIO_V2_LINE_GET_VALUES_IOCTL) {
        v->bits = k.levels & v->mask;
        return 0;
    }
    if (req == GPIO_V2_LINE_SET_VALUES_IOCTL) {
        ++k.sets;
        k.levels = (k.levels & ~v->mask) | (v->bits & v->mask);
        return 0;
    }
    errno = ENOTTY;
    return -1;
}

ssize_t fake_read(int, void* buf, size_t n) {
    if (k.reads.empty()) {
        errno = k.errno_when_empty;
        return -1;
    }
    const auto batch = k.reads.front();
    k.reads.pop_front();
    const auto len = std::min(n, batch.size() * sizeof(gpio_v2_line_event));
    std::memcpy(buf, batch.data(), len);
    return static_cast<ssize_t>(len);
}

int fake_close(int) {
    return 0;
}

constexpr auto ev = &io::test::edge_record;

const gate::metric& find(const std::vector<gate::metric>& ms, const std::string& name) {
    for (const auto& m : ms)
        if (m.name == name)
            return m;
    throw std::runtime_error("no metric " + name);
}

std::uint64_t u64_property(const gate::metric& m, const char* key) {
    const auto* p = m.find_property(key);
    if (p == nullptr)
        throw std::runtime_error(m.name + " has no property " + key);
    return std::get<std::uint64_t>(p->val);
}

// Offsets: A0=0, A1=1 (inputs, port A), B0=8 (writable, safe level low),
// C0=16 (held by another process, not in the request). Request order: 0, 1, 8.
class gate_lines_device : public ::testing::Test {
protected:
    gate_lines_device() : guard_{fake()} { k = fake_request{}; }
    static io::detail::sys_calls fake() {
        auto f = io::detail::real_sys();
        f.ioctl = fake_ioctl;
        f.read = fake_read;
        f.close = fake_close;
        return f;
    }
    std::unique_ptr<gate::lines_device> make() {
        std::vector<gate::published_line> lines{
            {0, "A0", false, false}, {1, "A1", false, false}, {8, "B0", true, false, false}, {16, "C0", false, true}};
        std::vector<io::port> ports{{"A", {0, 1}}, {"B", {8}}, {"C", {16}}};
        return std::make_unique<gate::lines_device>(
            &request_, std::move(lines), ports, loop_, [this](std::vector<gate::metric> m) { data_.push_back(m); },
            [this](std::error_code ec) { gone_ = ec; });
    }
    io::detail::sys_override guard_;
    io::test::readable_fd pipe_;
    io::line_request request_ = io::detail::line_request_access::make(pipe_.r, "/dev/gpiochip9", {0, 1, 8});
    io::event_loop loop_;
    std::vector<std::vector<gate::metric>> data_;
    std::error_code gone_;
};

}  // namespace

TEST_F(gate_lines_device, birth_has_values_quality_ports_and_the_held_line_as_null_bad) {
    k.levels = 0b101;  // A0 and B0 high
    auto d = make();
    const auto b = d->birth_metrics();
    EXPECT_EQ(find(b, "Lines/A0").val, gate::value{true});
    EXPECT_EQ(find(b, "Lines/A1").val, gate::value{false});
    EXPECT_EQ(find(b, "Lines/B0").val, gate::value{true});
    EXPECT_EQ(find(b, "Lines/A0").type, gate::datatype::boolean);
    EXPECT_EQ(u64_property(find(b, "Lines/A0"), "Quality"), 192U);
    EXPECT_TRUE(find(b, "Lines/C0").is_null());
    EXPECT_EQ(u64_property(find(b, "Lines/C0"), "Quality"), 0U);
    EXPECT_EQ(find(b, "Ports/A").type, gate::datatype::uint8);
    EXPECT_EQ(find(b, "Ports/A").val, gate::value{std::uint64_t{0b01}});
    EXPECT_THROW(find(b, "Ports/B"), std::runtime_error);  // an output port
    EXPECT_THROW(find(b, "Ports/C"), std::runtime_error);  // held elsewhere
    EXPECT_EQ(find(b, "Lost events").val, gate::value{std::uint64_t{0}});
    EXPECT_EQ(d->held_elsewhere(), std::vector<std::string>{"C0"});
}

TEST_F(gate_lines_device, each_edge_is_a_metric_with_its_kernel_timestamp_and_sequence_numbers) {
    auto d = make();
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const auto ts = static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000U + static_cast<std::uint64_t>(now.tv_nsec);
    // Two edges, then one whose seqno shows two events lost before it.
    k.reads.push_back({ev(0, true, ts, 1, 1), ev(1, true, ts + 1000, 2, 1), ev(0, false, ts + 5'000'000, 5, 3)});
    EXPECT_EQ(loop_.run_once(1000ms), 1U);
    ASSERT_EQ(data_.size(), 1U);
    const auto& m = data_[0];
    ASSERT_GE(m.size(), 5U);
    EXPECT_EQ(m[0].name, "Lines/A0");
    EXPECT_EQ(m[0].val, gate::value{true});
    EXPECT_EQ(u64_property(m[0], "timestamp_ns"), ts);
    EXPECT_EQ(u64_property(m[0], "seqno"), 1U);
    EXPECT_EQ(u64_property(m[0], "line_seqno"), 1U);
    EXPECT_EQ(m[1].name, "Lines/A1");
    EXPECT_EQ(m[2].name, "Lines/A0");
    EXPECT_EQ(m[2].val, gate::value{false});
    EXPECT_EQ(u64_property(m[2], "seqno"), 5U);
    // UTC ms of the kernel's time (one offset per batch): 5 ms apart, and
    // now within a minute.
    EXPECT_EQ(*m[2].timestamp_ms - *m[0].timestamp_ms, 5U);
    const auto wall = gate::utc_now_ms();
    EXPECT_LT(wall - *m[0].timestamp_ms, 60'000U);
    EXPECT_EQ(find(m, "Ports/A").val, gate::value{std::uint64_t{0b10}});
    EXPECT_EQ(find(m, "Lost events").val, gate::value{std::uint64_t{2}});
}

TEST_F(gate_lines_device, writes_only_writable_lines_and_confirms_the_value_read_back) {
    auto d = make();
    std::vector<gate::metric> confirmed;
    using ws = gate::device::write_status;
    EXPECT_EQ(d->write(gate::make_metric("Lines/B0", gate::datatype::boolean, true), confirmed), ws::done);
    EXPECT_EQ(k.levels & 0b100U, 0b100U);
    ASSERT_EQ(confirmed.size(), 1U);
    EXPECT_EQ(confirmed[0].name, "Lines/B0");
    EXPECT_EQ(confirmed[0].val, gate::value{true});
    EXPECT_TRUE(confirmed[0].timestamp_ms.has_value());
    const auto sets = k.sets;
    EXPECT_EQ(d->write(gate::make_metric("Lines/A0", gate::datatype::boolean, true), confirmed), ws::not_writable);
    EXPECT_EQ(d->write(gate::make_metric("Lines/C0", gate::datatype::boolean, true), confirmed), ws::not_writable);
    EXPECT_EQ(d->write(gate::make_metric("Ports/A", gate::datatype::uint8, std::uint64_t{1}), confirmed),
              ws::not_writable);
    EXPECT_EQ(d->write(gate::make_metric("Lines/B0", gate::datatype::string, std::string{"1"}), confirmed),
              ws::bad_value);
    EXPECT_EQ(d->write(gate::make_metric("Lines/Z9", gate::datatype::boolean, true), confirmed), ws::unknown_metric);
    EXPECT_EQ(d->write(gate::make_metric("Nothing", gate::datatype::boolean, true), confirmed), ws::unknown_metric);
    EXPECT_EQ(k.sets, sets);
    EXPECT_EQ(confirmed.size(), 1U);
}

TEST_F(gate_lines_device, a_card_that_goes_away_is_reported_once) {
    auto d = make();
    k.errno_when_empty = ENODEV;
    EXPECT_EQ(loop_.run_once(1000ms), 1U);
    EXPECT_TRUE(io::is_device_removed(gone_)) << gone_.message();
    EXPECT_TRUE(data_.empty());
    gone_ = {};
    EXPECT_EQ(loop_.run_once(0ms), 0U);  // not watched any more
    EXPECT_FALSE(gone_);
}

TEST_F(gate_lines_device, a_lost_broker_drives_safe_levels_and_nothing_else) {
    auto d = make();
    std::vector<gate::metric> confirmed;
    ASSERT_EQ(d->write(gate::make_metric("Lines/B0", gate::datatype::boolean, true), confirmed),
              gate::device::write_status::done);
    k.levels |= 0b001;  // A0 high (an input)
    d->connection_lost();
    EXPECT_EQ(k.levels, 0b001U);  // B0 driven low, A0 untouched
    EXPECT_EQ(find(d->birth_metrics(), "Lines/B0").val, gate::value{false});
}

TEST_F(gate_lines_device, a_birth_while_the_card_fails_keeps_the_levels_last_known) {
    k.levels = 0b001;
    auto d = make();
    k.ioctl_errno = ENODEV;  // removed; its edge registration will say so
    std::vector<gate::metric> b;
    EXPECT_NO_THROW(b = d->birth_metrics());
    EXPECT_EQ(find(b, "Lines/A0").val, gate::value{true});
    std::vector<gate::metric> confirmed;
    EXPECT_EQ(d->write(gate::make_metric("Lines/B0", gate::datatype::boolean, true), confirmed),
              gate::device::write_status::failed);
    EXPECT_TRUE(confirmed.empty());
}
