// SPDX-License-Identifier: MIT
// line_request's hot paths against a fake kernel: the system-call seam
// answers the GPIO v2 ioctls and reads, so every error path can be reached.
#include <io/chip.hpp>
#include <io/error.hpp>
#include <io/event_loop.hpp>
#include <io/line_request.hpp>

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

namespace {

// The fake kernel's state; one test at a time.
struct fake_kernel {
    std::uint64_t levels = 0;          // request-order bits
    std::uint64_t last_set_mask = 0;
    int ioctl_eintr = 0;               // fail this many ioctls with EINTR first
    int ioctl_errno = 0;               // then fail with this, if non-zero
    std::deque<std::vector<std::uint8_t>> reads;  // each read() returns the next chunk
    int read_errno_when_empty = EAGAIN;
    int read_eintr = 0;
    int poll_eintr = 0;
    short poll_revents = POLLIN;
    int ioctls = 0;
} k;

int fake_ioctl(int, unsigned long req, void* arg) {
    ++k.ioctls;
    if (k.ioctl_eintr > 0) {
        --k.ioctl_eintr;
        errno = EINTR;
        return -1;
    }
    if (k.ioctl_errno != 0) {
        errno = k.ioctl_errno;
        return -1;
    }
    auto* v = static_cast<gpio_v2_line_values*>(arg);
    if (req == GPIO_V2_LINE_GET_VALUES_IOCTL) {
        v->bits = k.levels & v->mask;
    } else if (req == GPIO_V2_LINE_SET_VALUES_IOCTL) {
        k.last_set_mask = v->mask;
        k.levels = (k.levels & ~v->mask) | (v->bits & v->mask);
    } else {
        errno = ENOTTY;
        return -1;
    }
    return 0;
}

ssize_t fake_read(int, void* buf, size_t n) {
    if (k.read_eintr > 0) {
        --k.read_eintr;
        errno = EINTR;
        return -1;
    }
    if (k.reads.empty()) {
        if (k.read_errno_when_empty == 0)
            return 0;
        errno = k.read_errno_when_empty;
        return -1;
    }
    auto chunk = k.reads.front();
    k.reads.pop_front();
    const auto len = std::min(n, chunk.size());
    std::memcpy(buf, chunk.data(), len);
    return static_cast<ssize_t>(len);
}

int fake_poll(pollfd* fds, nfds_t, int) {
    if (k.poll_eintr > 0) {
        --k.poll_eintr;
        errno = EINTR;
        return -1;
    }
    fds[0].revents = k.poll_revents;
    return k.poll_revents != 0 ? 1 : 0;
}

int fake_close(int) {
    return 0;
}

std::vector<std::uint8_t> events(std::initializer_list<gpio_v2_line_event> evs) {
    std::vector<std::uint8_t> out;
    for (const auto& e : evs) {
        const auto* p = reinterpret_cast<const std::uint8_t*>(&e);
        out.insert(out.end(), p, p + sizeof e);
    }
    return out;
}

constexpr auto ev = &io::test::edge_record;

class line_request_fake : public ::testing::Test {
protected:
    line_request_fake() : guard_{fake()} { k = fake_kernel{}; }
    static io::detail::sys_calls fake() {
        auto f = io::detail::real_sys();
        f.ioctl = fake_ioctl;
        f.read = fake_read;
        f.poll = fake_poll;
        f.close = fake_close;
        return f;
    }
    // A real descriptor (fcntl on it must work) that the fake never touches.
    io::line_request make(std::vector<unsigned> offsets) {
        return io::detail::line_request_access::make(::open("/dev/null", O_RDONLY | O_CLOEXEC), "/dev/gpiochip9",
                                                     std::move(offsets));
    }
    io::detail::sys_override guard_;
};

TEST_F(line_request_fake, get_bits_maps_request_order_to_caller_order) {
    auto r = make({10, 3, 7});   // request order: 10 -> bit 0, 3 -> bit 1, 7 -> bit 2
    k.levels = 0b101;            // lines 10 and 7 high
    const unsigned ask[] = {7, 3, 10};
    EXPECT_EQ(r.get_bits(ask), 0b101U);
    EXPECT_TRUE(r.get(10));
    EXPECT_FALSE(r.get(3));
}

TEST_F(line_request_fake, set_bits_touches_only_the_named_lines) {
    auto r = make({0, 1, 2, 3});
    k.levels = 0b1000;
    const unsigned lines[] = {2, 0};
    r.set_bits(lines, 0b01);    // line 2 high, line 0 low
    EXPECT_EQ(k.last_set_mask, 0b0101U);
    EXPECT_EQ(k.levels, 0b1100U);
}

TEST_F(line_request_fake, port_as_one_integer_in_one_call) {
    auto r = make({0, 1, 2, 3, 4, 5, 6, 7});
    const io::port a{"A", {0, 1, 2, 3, 4, 5, 6, 7}};
    r.write_port(a, 0xa5);
    EXPECT_EQ(k.ioctls, 1);
    EXPECT_EQ(r.read_port(a), 0xa5U);
    EXPECT_EQ(k.ioctls, 2);
    try {
        r.write_port(a, 0x1a5);
        FAIL() << "a value wider than the port was accepted";
    } catch (const io::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("0..255"), std::string::npos) << e.what();
    }
}

TEST_F(line_request_fake, a_port_inside_a_larger_request_maps_by_its_place) {
    // Request: 300 (beyond the offset index), then port B = 8..15, then 2.
    auto r = make({300, 8, 9, 10, 11, 12, 13, 14, 15, 2});
    const io::port b{"B", {8, 9, 10, 11, 12, 13, 14, 15}};
    r.write_port(b, 0xc3);
    EXPECT_EQ(k.last_set_mask, 0x1feU) << "B is request bits 1..8";
    EXPECT_EQ(k.levels, 0xc3U << 1);
    k.levels |= 1U | (1U << 9);  // 300 and 2 high: not part of B
    EXPECT_EQ(r.read_port(b), 0xc3U);
    const unsigned tail[] = {15, 2};  // a run of the request
    EXPECT_EQ(r.get_bits(tail), 0b11U);
    const unsigned out_of_order[] = {2, 300, 9};
    EXPECT_EQ(r.get_bits(out_of_order), 0b111U) << "2, 300 and 9 (in B's 0xc3) are high";
    r.set_bits(out_of_order, 0b100);  // 2 low, 300 low, 9 high
    EXPECT_EQ(k.last_set_mask, (1U << 9) | 1U | (1U << 2));
    EXPECT_EQ(k.levels & ((1U << 9) | 1U | (1U << 2)), 1U << 2);
    const unsigned foreign[] = {8, 16};
    try {
        (void)r.get_bits(foreign);
        FAIL() << "a line outside the request was read";
    } catch (const io::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("line 16"), std::string::npos) << e.what();
    }
    std::error_code ec;
    r.set_bits(foreign, 1, ec);
    EXPECT_EQ(ec.value(), EINVAL);
}

// Ports whose lines are not the request's consecutive offsets in order take
// the general placement; each bit still lands on its line.
TEST_F(line_request_fake, ports_of_every_layout_map_bit_by_bit) {
    auto r = make({3, 2, 1, 0, 8, 9, 10, 12});
    const auto bit_of_request = [](std::initializer_list<unsigned> positions) {
        std::uint64_t m = 0;
        for (auto p : positions)
            m |= std::uint64_t{1} << p;
        return m;
    };
    // Consecutive offsets the request holds in the other order.
    const io::port rev{"R", {0, 1, 2, 3}};
    r.write_port(rev, 0b0001);  // line 0 high: request position 3
    EXPECT_EQ(k.last_set_mask, bit_of_request({0, 1, 2, 3}));
    EXPECT_EQ(k.levels, bit_of_request({3}));
    EXPECT_EQ(r.read_port(rev), 0b0001U);
    // Consecutive offsets past the request's run (8, 9, 10 then 12).
    const io::port gap{"G", {9, 10, 11}};
    EXPECT_THROW((void)r.read_port(gap), io::invalid_argument) << "11 is not in the request";
    const io::port tail{"T", {9, 10}};
    k.levels = bit_of_request({5});
    EXPECT_EQ(r.read_port(tail), 0b01U);
    // Consecutive but one pair swapped.
    const io::port swapped{"S", {8, 10, 9}};
    r.write_port(swapped, 0b010);  // line 10 high: position 6
    EXPECT_EQ(k.last_set_mask, bit_of_request({4, 5, 6}));
    EXPECT_EQ(k.levels & bit_of_request({4, 5, 6}), bit_of_request({6}));
    EXPECT_EQ(r.read_port(swapped), 0b010U);
}

TEST_F(line_request_fake, all_64_lines_as_one_port) {
    std::vector<unsigned> offs(64);
    for (unsigned i = 0; i < 64; ++i)
        offs[i] = 100 + i;
    auto r = make(offs);
    const io::port all{"ALL", offs};
    r.write_port(all, 0x8000'0000'0000'0001ULL);
    EXPECT_EQ(k.last_set_mask, ~std::uint64_t{0});
    EXPECT_EQ(r.read_port(all), 0x8000'0000'0000'0001ULL);
}

TEST_F(line_request_fake, signals_are_retried) {
    auto r = make({4});
    k.levels = 1;
    k.ioctl_eintr = 3;
    EXPECT_TRUE(r.get(4));
    EXPECT_EQ(k.ioctls, 4);
}

TEST_F(line_request_fake, a_vanished_card_is_device_removed) {
    auto r = make({4});
    k.ioctl_errno = ENODEV;
    try {
        (void)r.get(4);
        FAIL() << "get on a removed card succeeded";
    } catch (const std::system_error& e) {
        EXPECT_TRUE(io::is_device_removed(e.code()));
        EXPECT_NE(std::string(e.what()).find("/dev/gpiochip9: device removed"), std::string::npos) << e.what();
    }
    std::error_code ec;
    EXPECT_FALSE(r.get(4, ec));
    EXPECT_EQ(ec.value(), ENODEV);
    r.set(4, true, ec);
    EXPECT_EQ(ec.value(), ENODEV);
}

TEST_F(line_request_fake, lines_outside_the_request_are_refused_by_name) {
    auto r = make({1, 2});
    try {
        (void)r.get(5);
        FAIL();
    } catch (const io::invalid_argument& e) {
        EXPECT_STREQ(e.what(), "get: line 5 of /dev/gpiochip9 is not in this request");
    }
    std::error_code ec;
    r.set(5, true, ec);
    EXPECT_EQ(ec.value(), EINVAL);
    EXPECT_EQ(k.ioctls, 0) << "nothing reached the kernel";
}

TEST_F(line_request_fake, a_released_request_is_a_usage_error) {
    auto r = make({1});
    r.release();
    EXPECT_TRUE(r.released());
    EXPECT_THROW((void)r.get(1), io::usage_error);
    EXPECT_THROW(r.set(1, true), io::usage_error);
    std::array<io::edge_event, 4> buf{};
    EXPECT_THROW((void)r.read_edge_events(buf), io::usage_error);
    std::error_code ec;
    (void)r.get(1, ec);
    EXPECT_EQ(ec.value(), EBADF);
}

TEST_F(line_request_fake, edge_events_are_copied_without_loss) {
    auto r = make({0, 1});
    k.reads.push_back(events({ev(0, true, 1000, 1, 1), ev(1, false, 2000, 2, 1)}));
    std::array<io::edge_event, 8> buf{};
    ASSERT_EQ(r.read_edge_events(buf), 2U);
    EXPECT_EQ(buf[0].line, 0U);
    EXPECT_EQ(buf[0].kind, io::edge::rising);
    EXPECT_EQ(buf[0].timestamp_ns, 1000U);
    EXPECT_EQ(buf[1].line, 1U);
    EXPECT_EQ(buf[1].kind, io::edge::falling);
    EXPECT_EQ(buf[1].seqno, 2U);
    EXPECT_EQ(buf[1].line_seqno, 1U);
    EXPECT_EQ(r.lost_events(), 0U);
    EXPECT_EQ(r.read_edge_events(buf), 0U) << "EAGAIN: nothing queued, not an error";
}

TEST_F(line_request_fake, gaps_in_sequence_numbers_count_as_lost) {
    auto r = make({0});
    k.reads.push_back(events({ev(0, true, 1, 1, 1), ev(0, false, 2, 2, 2), ev(0, true, 9, 6, 6)}));
    std::array<io::edge_event, 8> buf{};
    EXPECT_EQ(r.read_edge_events(buf), 3U);
    EXPECT_EQ(r.lost_events(), 3U) << "events 3, 4 and 5 were dropped by the kernel";
}

// The kernel's numbers are 32 bits; libio's go on past them, and what was
// dropped across the wrap is still counted.
TEST_F(line_request_fake, sequence_numbers_go_on_past_32_bits) {
    auto r = make({4});
    k.reads.push_back(events({ev(4, true, 1, 1, 1)}));
    k.reads.push_back(events({ev(4, false, 2, 0x7fff'ffffU, 0x7fff'ffffU), ev(4, true, 3, 0xffff'fff0U, 0xffff'fff0U)}));
    k.reads.push_back(events({ev(4, false, 4, 0xffff'ffffU, 0xffff'ffffU), ev(4, true, 5, 0, 0), ev(4, false, 6, 1, 1)}));
    std::array<io::edge_event, 8> buf{};
    std::vector<std::uint64_t> seqnos, line_seqnos;
    for (int i = 0; i < 3; ++i) {
        const auto n = r.read_edge_events(buf);
        for (std::size_t j = 0; j < n; ++j) {
            seqnos.push_back(buf[j].seqno);
            line_seqnos.push_back(buf[j].line_seqno);
        }
    }
    const std::vector<std::uint64_t> want{1, 0x7fff'ffffULL, 0xffff'fff0ULL, 0xffff'ffffULL, 0x1'0000'0000ULL,
                                          0x1'0000'0001ULL};
    EXPECT_EQ(seqnos, want);
    EXPECT_EQ(line_seqnos, want);
    EXPECT_EQ(r.lost_events(), 0x1'0000'0001ULL - 6U) << "every number not read was dropped";
}

TEST_F(line_request_fake, each_lines_own_numbers_go_on_past_32_bits) {
    auto r = make({0, 1});
    k.reads.push_back(events({ev(0, true, 1, 1, 0xffff'fffeU), ev(1, true, 2, 2, 7), ev(0, false, 3, 3, 0xffff'ffffU)}));
    k.reads.push_back(events({ev(0, true, 4, 4, 0), ev(1, false, 5, 5, 8)}));
    std::array<io::edge_event, 8> buf{};
    ASSERT_EQ(r.read_edge_events(buf), 3U);
    EXPECT_EQ(buf[2].line_seqno, 0xffff'ffffULL);
    ASSERT_EQ(r.read_edge_events(buf), 2U);
    EXPECT_EQ(buf[0].line, 0U);
    EXPECT_EQ(buf[0].line_seqno, 0x1'0000'0000ULL);
    EXPECT_EQ(buf[1].line_seqno, 8U);
    EXPECT_EQ(r.lost_events(), 0U);
}

// The kernel numbers a request's events in its interrupt handler and queues
// them from each line's thread: two lines' events can come in the other
// order. That is no loss, and once both are read none is counted.
TEST_F(line_request_fake, events_read_out_of_order_are_not_lost) {
    auto r = make({0, 1});
    k.reads.push_back(events({ev(0, true, 1, 1, 1), ev(1, true, 3, 3, 1)}));
    k.reads.push_back(events({ev(0, false, 2, 2, 2), ev(1, false, 4, 4, 2)}));
    std::array<io::edge_event, 8> buf{};
    ASSERT_EQ(r.read_edge_events(buf), 2U);
    EXPECT_EQ(r.lost_events(), 1U) << "number 2 not read yet";
    ASSERT_EQ(r.read_edge_events(buf), 2U);
    EXPECT_EQ(buf[0].seqno, 2U);
    EXPECT_EQ(buf[1].seqno, 4U);
    EXPECT_EQ(r.lost_events(), 0U) << "every number read once: nothing lost";
}

TEST_F(line_request_fake, the_first_events_dropped_count_as_lost) {
    auto r = make({0});
    k.reads.push_back(events({ev(0, true, 1, 0x9000'0000U, 0x9000'0000U)}));
    std::array<io::edge_event, 8> buf{};
    ASSERT_EQ(r.read_edge_events(buf), 1U);
    EXPECT_EQ(buf[0].seqno, 0x9000'0000ULL);
    EXPECT_EQ(r.lost_events(), 0x9000'0000ULL - 1U);
}

TEST_F(line_request_fake, a_small_buffer_leaves_the_rest_queued) {
    auto r = make({0});
    k.reads.push_back(events({ev(0, true, 1, 1, 1)}));
    k.reads.push_back(events({ev(0, false, 2, 2, 2)}));
    std::array<io::edge_event, 1> one{};
    EXPECT_EQ(r.read_edge_events(one), 1U);
    EXPECT_EQ(one[0].seqno, 1U);
    EXPECT_EQ(r.read_edge_events(one), 1U);
    EXPECT_EQ(one[0].seqno, 2U);
}

TEST_F(line_request_fake, a_partial_event_is_an_error_not_data) {
    auto r = make({0});
    auto bytes = events({ev(0, true, 1, 1, 1)});
    bytes.resize(20);
    k.reads.push_back(bytes);
    std::array<io::edge_event, 4> buf{};
    std::error_code ec;
    EXPECT_EQ(r.read_edge_events(buf, ec), 0U);
    EXPECT_EQ(ec.value(), EIO);
}

TEST_F(line_request_fake, reads_survive_signals_and_report_removal) {
    auto r = make({0});
    k.read_eintr = 2;
    k.reads.push_back(events({ev(0, true, 1, 1, 1)}));
    std::array<io::edge_event, 4> buf{};
    EXPECT_EQ(r.read_edge_events(buf), 1U);
    k.read_errno_when_empty = ENODEV;
    try {
        (void)r.read_edge_events(buf);
        FAIL();
    } catch (const std::system_error& e) {
        EXPECT_TRUE(io::is_device_removed(e.code())) << e.what();
    }
    k.read_errno_when_empty = 0;  // end of file: the chip went away
    std::error_code ec;
    EXPECT_EQ(r.read_edge_events(buf, ec), 0U);
    EXPECT_EQ(ec.value(), ENODEV);
}

TEST_F(line_request_fake, wait_retries_signals_and_sees_hangup) {
    auto r = make({0});
    k.poll_eintr = 2;
    EXPECT_TRUE(r.wait_edge_events(100ms));
    k.poll_revents = 0;
    EXPECT_FALSE(r.wait_edge_events(0ms));
    k.poll_revents = POLLHUP | POLLERR;
    std::error_code ec;
    EXPECT_FALSE(r.wait_edge_events(100ms, ec));
    EXPECT_TRUE(io::is_device_removed(ec));
}

TEST_F(line_request_fake, moving_keeps_one_owner) {
    auto a = make({3});
    auto b = std::move(a);
    EXPECT_TRUE(a.released());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    EXPECT_FALSE(b.released());
    k.levels = 1;
    EXPECT_TRUE(b.get(3));
}

// The card's count of changes not delivered (iocard's sysfs "lost"): each
// of the request's lines is taken in by its growth; a count that went down
// started again (edge detection set up anew), so all of it is new.
TEST_F(line_request_fake, the_cards_lost_counts_add_to_lost_events) {
    char path[] = "/tmp/libio-lost-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::unlink(path);
    const auto put = [&](const std::string& text) {
        ASSERT_EQ(::ftruncate(fd, 0), 0);
        ASSERT_EQ(::pwrite(fd, text.data(), text.size(), 0), static_cast<ssize_t>(text.size()));
    };
    put("3:2 7:5\n");
    auto r = make({7, 3});
    io::detail::line_request_access::attach_card_lost(r, fd);
    EXPECT_EQ(r.lost_events(), 7U) << "what the card counted since the lines' edge detection started";
    put("3:2 7:9 12:100\n");
    EXPECT_TRUE(io::detail::line_request_access::take_card_lost(r));
    EXPECT_EQ(r.lost_events(), 11U) << "line 7 grew by 4; line 12 is not the request's";
    put("7:1\n");
    EXPECT_TRUE(io::detail::line_request_access::take_card_lost(r));
    EXPECT_EQ(r.lost_events(), 12U) << "line 7 started again at 1, line 3 at 0";
    put("\n");
    EXPECT_TRUE(io::detail::line_request_access::take_card_lost(r));
    EXPECT_EQ(r.lost_events(), 12U);
    r.release();  // closes the attribute too
    EXPECT_FALSE(io::detail::line_request_access::take_card_lost(r));
}

// --- on_edge_events: the request's fd is a pipe with a byte in it (always
// readable, as a request with events queued is), and the fake kernel's
// reads give the events and errors.
using io::test::readable_fd;

TEST_F(line_request_fake, edge_callback_that_releases_its_request_is_not_called_again) {
    readable_fd fd;
    auto r = io::detail::line_request_access::make(fd.r, "/dev/gpiochip9", {0});
    io::event_loop loop;
    // One read gives two events, the next finds the chip gone: both in one wake-up.
    k.reads.push_back(events({ev(0, true, 1, 1, 1), ev(0, false, 2, 2, 2)}));
    k.read_errno_when_empty = ENODEV;
    int calls = 0;
    io::registration reg;
    reg = io::on_edge_events(loop, r, [&](std::span<const io::edge_event> evs, std::error_code ec) {
        ++calls;
        EXPECT_EQ(evs.size(), 2U);
        EXPECT_FALSE(ec);
        r.release();  // done with the lines: the application lets go of both
        reg.reset();
    });
    EXPECT_EQ(loop.run_once(1000ms), 1U);
    EXPECT_EQ(calls, 1) << "called again (with the error) after it released the request and its registration";
}

TEST_F(line_request_fake, edge_error_after_a_stop_waits_for_the_next_run_and_comes_once) {
    readable_fd fd;
    auto r = io::detail::line_request_access::make(fd.r, "/dev/gpiochip9", {0});
    io::event_loop loop;
    k.reads.push_back(events({ev(0, true, 1, 1, 1)}));
    k.read_errno_when_empty = ENODEV;
    std::vector<std::error_code> errors;
    std::size_t edges = 0;
    auto reg = io::on_edge_events(loop, r, [&](std::span<const io::edge_event> evs, std::error_code ec) {
        edges += evs.size();
        if (ec)
            errors.push_back(ec);
        else
            loop.stop();  // enough: the first edge is what the application waited for
    });
    loop.run();
    EXPECT_EQ(edges, 1U);
    EXPECT_TRUE(errors.empty()) << "a callback ran after stop()";
    EXPECT_EQ(loop.run_once(1000ms), 1U);
    ASSERT_EQ(errors.size(), 1U);
    EXPECT_TRUE(io::is_device_removed(errors[0])) << errors[0].message();
    EXPECT_EQ(loop.run_once(0ms), 0U) << "a failed request is not watched any more";
    EXPECT_EQ(errors.size(), 1U);
}

}  // namespace
