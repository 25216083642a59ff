// SPDX-License-Identifier: MIT
// iotool, the real binary, against virtual cards of iocard.ko and the
// emulated UARTs and FTDI of the test VM: every subcommand, its output, its
// JSON and its exit statuses.
#include "cable.hpp"
#include "sim_card.hpp"
#include "tool_runner.hpp"
#include "vm_test.hpp"

#include <io/io.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <sstream>
#include <thread>

using io::test::contains;
using io::test::sim_card;
using namespace std::chrono_literals;

namespace {

const std::string iotool = IOTOOL_PATH;

io::test::tool_result run(std::vector<std::string> args) {
    args.insert(args.begin(), iotool);
    return io::test::run_tool(args, {}, 60s);
}

std::vector<std::string> cmd(std::vector<std::string> args) {
    args.insert(args.begin(), iotool);
    return args;
}

class iotool_vm : public io::test::vm_test {
protected:
    static void settle() { ASSERT_EQ(io::test::run("udevadm settle --timeout=30"), 0); }

    /// Reads stdout lines until one contains `part`; all lines read so far in `seen`.
    static bool await_line(io::test::tool_process& p, const std::string& part, std::string* seen = nullptr,
                           std::chrono::milliseconds timeout = 20s) {
        const auto end = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < end) {
            const auto line = p.read_line(std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now()));
            if (!line)
                return false;
            if (seen != nullptr)
                *seen += *line + "\n";
            if (contains(*line, part))
                return true;
        }
        return false;
    }
};

// --- cards ------------------------------------------------------------------------

TEST_F(iotool_vm, list_shows_cards_as_a_table_and_as_json) {
    sim_card dio{"mcc-pci-dio24"};
    sim_card cos{"cos32"};
    settle();
    auto r = run({"list"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "NAME")) << r.out;
    EXPECT_TRUE(contains(r.out, dio.name() + "  mcc-pci-dio24")) << r.out;
    EXPECT_TRUE(contains(r.out, "qemu-pci-serial-4x")) << r.out;
    r = run({"list", "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out.rfind("{\"version\":1,\"cards\":[{", 0), 0U) << r.out;
    EXPECT_TRUE(contains(r.out, "{\"name\":\"" + cos.name() + "\",\"model\":\"cos32\",\"vendor\":\"virtual\"")) << r.out;
    EXPECT_TRUE(contains(r.out, "\"gpiochip\":\"" + cos.chip_path() + "\",\"lines\":64,\"cos\":\"hw\",\"ports\":["
                                "{\"name\":\"IN\",\"width\":32,\"direction\":\"in\"},"
                                "{\"name\":\"OUT\",\"width\":32,\"direction\":\"out\"}],\"serial_ports\":[]"))
        << r.out;
    EXPECT_TRUE(contains(r.out, "\"serial_ports\":[{\"path\":\"/dev/ttyS")) << r.out;
}

TEST_F(iotool_vm, info_shows_lines_their_use_and_serial_settings) {
    sim_card dio{"mcc-pci-dio24"};
    settle();
    io::chip chip{dio.chip_path()};
    auto held = chip.prepare_request().consumer("test-holder").add("B3", io::line_config::input()).make();
    auto r = run({"info", dio.name()});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, dio.name() + ": mcc-pci-dio24 (virtual)")) << r.out;
    EXPECT_TRUE(contains(r.out, "ports     A:8:io B:8:io CL:4:io CH:4:io")) << r.out;
    EXPECT_TRUE(contains(r.out, "test-holder")) << r.out;
    EXPECT_TRUE(contains(r.out, "CH7")) << r.out;
    r = run({"info", dio.name(), "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "{\"offset\":11,\"name\":\"B3\",\"port\":\"B\",\"direction\":\"input\",\"used\":true,"
                                "\"consumer\":\"test-holder\""))
        << r.out;
    EXPECT_TRUE(contains(r.out, "\"serial_ports\":[]}")) << r.out;
    r = run({"info", "qemu-pci-serial-4x"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "/dev/ttyS")) << r.out;
    EXPECT_TRUE(contains(r.out, "8N1")) << r.out;
    r = run({"info", "qemu-pci-serial-4x", "--json"});
    EXPECT_TRUE(contains(r.out, "\"settings\":{\"text\":")) << r.out;
}

// --- lines and ports ------------------------------------------------------------------

TEST_F(iotool_vm, set_get_and_port_through_the_loopback) {
    sim_card dio{"mcc-pci-dio24"};
    dio.loopback(true);
    settle();
    auto r = run({"set", dio.name(), "A0=1", "A1=0", "A7=high"});
    ASSERT_EQ(r.status, 0) << r.err;
    r = run({"get", dio.name(), "B0", "B1", "B7"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "B0=1 B1=0 B7=1\n");
    r = run({"get", dio.name(), "8", "--json"});  // B0 by offset
    EXPECT_EQ(r.out, "{\"card\":\"" + dio.name() + "\",\"lines\":[{\"name\":\"B0\",\"offset\":8,\"value\":1}]}\n");
    r = run({"port", dio.name(), "A", "0x5a"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(run({"port", dio.name(), "B"}).out, "0x5a\n");
    EXPECT_EQ(run({"port", dio.name(), "B", "--format", "dec"}).out, "90\n");
    EXPECT_EQ(run({"port", dio.name(), "B", "--format", "bin"}).out, "0b01011010\n");
    EXPECT_EQ(run({"port", dio.name(), "B", "--json"}).out,
              "{\"card\":\"" + dio.name() + "\",\"port\":\"B\",\"width\":8,\"value\":90}\n");
    ASSERT_EQ(run({"port", dio.name(), "CL", "0b1010"}).status, 0);
    EXPECT_EQ(run({"port", dio.name(), "CH"}).out, "0xa\n");
}

TEST_F(iotool_vm, errors_name_what_is_valid) {
    sim_card dio{"mcc-pci-dio24"};
    sim_card cos{"cos32"};
    settle();
    ASSERT_EQ(run({"set", dio.name(), "A0=1"}).status, 0);
    struct bad {
        std::vector<std::string> args;
        int status;
        std::string says;
    };
    const bad cases[] = {
        {{"get", dio.name(), "Z9"}, 3, "no line 'Z9' on card " + dio.name() + " (mcc-pci-dio24); its lines are A0..A7, B0..B7, CL0..CL3, CH4..CH7"},
        {{"get", dio.name(), "99"}, 3, "offsets are 0..23"},
        {{"get", dio.name(), "A0"}, 2, "is driven as an output now"},
        {{"get", cos.name(), "OUT0"}, 2, "is an output only; its inputs are IN0..IN31"},
        {{"set", cos.name(), "IN0=1"}, 2, "is an input only; its outputs are OUT0..OUT31"},
        {{"port", dio.name(), "A", "256"}, 2, "at most 255"},
        {{"port", dio.name(), "Q"}, 3, "no port 'Q'"},
        {{"monitor", cos.name(), "OUT1"}, 2, "is an output only"},
        {{"info", "dio120#7"}, 3, "no card 'dio120#7'; cards present:"},
    };
    for (const auto& c : cases) {
        const auto r = run(c.args);
        EXPECT_EQ(r.status, c.status) << c.args[0] << " " << c.args.back() << ": " << r.err;
        EXPECT_TRUE(contains(r.err, c.says)) << "expected '" << c.says << "' in: " << r.err;
    }
}

TEST_F(iotool_vm, set_hold_keeps_the_lines_until_interrupted) {
    sim_card cos{"cos32"};
    settle();
    io::test::tool_process p{cmd({"set", "--hold", cos.name(), "OUT3=1"})};
    io::chip chip{cos.chip_path()};
    bool held = false;
    for (int i = 0; i < 500 && !held; ++i) {
        const auto info = chip.info(35);
        held = info.used && info.consumer == "iotool";
        if (!held)
            std::this_thread::sleep_for(20ms);
    }
    ASSERT_TRUE(held) << "OUT3 not held by iotool";
    EXPECT_EQ(io::test::parse_mask(cos.outputs()) >> 32 & 0xfU, 0x8U);
    p.signal(SIGINT);
    const auto r = p.wait(20s);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.err, "holding OUT3=1 on " + cos.name())) << r.err;
    EXPECT_FALSE(chip.info(35).used);
    EXPECT_EQ(io::test::parse_mask(cos.outputs()) >> 32 & 0xfU, 0x8U) << "outputs keep their level";
}

// --- edges --------------------------------------------------------------------------

TEST_F(iotool_vm, monitor_prints_edges_as_json_lines_and_text) {
    sim_card cos{"cos32"};
    settle();
    io::test::tool_process p{cmd({"monitor", cos.name(), "IN0", "IN1", "--format", "json", "--count", "3", "--timeout", "30"})};
    std::string seen;
    ASSERT_TRUE(await_line(p, "\"event\":\"ready\"", &seen)) << seen;
    EXPECT_TRUE(contains(seen, "{\"event\":\"ready\",\"card\":\"" + cos.name() + "\",\"edges\":\"both\",\"lines\":[\"IN0\",\"IN1\"]}"))
        << seen;
    // One change at a time, each awaited: the kernel's cdev layer folds
    // interrupts of a line that come faster than its thread runs.
    cos.set_inputs("1");
    ASSERT_TRUE(await_line(p, "\"line\":\"IN0\",\"offset\":0,\"edge\":\"rising\"", &seen)) << seen;
    cos.set_inputs("3");
    ASSERT_TRUE(await_line(p, "\"line\":\"IN1\",\"offset\":1,\"edge\":\"rising\"", &seen)) << seen;
    cos.set_inputs("2");
    const auto r = p.wait(30s);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "{\"event\":\"edge\",\"line\":\"IN0\",\"offset\":0,\"edge\":\"rising\",\"timestamp_ns\":")) << r.out;
    EXPECT_TRUE(contains(r.out, "\"line\":\"IN1\",\"offset\":1,\"edge\":\"rising\"")) << r.out;
    EXPECT_TRUE(contains(r.out, "\"line\":\"IN0\",\"offset\":0,\"edge\":\"falling\"")) << r.out;
    EXPECT_TRUE(contains(r.out, "\"seqno\":3,\"line_seqno\":2}")) << r.out;

    io::test::tool_process text{cmd({"monitor", cos.name(), "IN5", "--edges", "rising", "--count", "1", "--timeout", "30"})};
    // No ready line in text mode: wait until the line is requested with its
    // edge detection (the kernel marks a line used before it arms the
    // interrupt, so give it a moment after that too).
    io::chip chip{cos.chip_path()};
    for (int i = 0; i < 3000 && chip.info(5).edges != io::edge::rising; ++i)
        std::this_thread::sleep_for(20ms);
    ASSERT_EQ(chip.info(5).edges, io::edge::rising) << "monitor did not request IN5 within 60 s";
    std::this_thread::sleep_for(200ms);
    cos.set_inputs("20");
    const auto t = text.wait(30s);
    EXPECT_EQ(t.status, 0) << t.err;
    EXPECT_TRUE(contains(t.out, "  IN5  rising  #1\n")) << t.out;
}

TEST_F(iotool_vm, monitor_times_out_with_status_1_when_fewer_events_came) {
    sim_card cos{"cos32"};
    settle();
    const auto r = run({"monitor", cos.name(), "IN0", "--count", "1", "--timeout", "300ms"});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_TRUE(contains(r.err, "0 of 1 events before the timeout")) << r.err;
}

TEST_F(iotool_vm, monitor_reports_lost_events) {
    sim_card cos{"cos32"};
    settle();
    io::test::tool_process p{cmd({"monitor", cos.name(), "IN0", "--json", "--buffer", "2", "--timeout", "60"})};
    std::string seen;
    ASSERT_TRUE(await_line(p, "\"event\":\"ready\"", &seen)) << seen;
    p.signal(SIGSTOP);  // iotool cannot read: the kernel's queue of 2 overflows
    // Paced so that each edge is its own interrupt (the cdev layer folds faster ones).
    for (int i = 0; i < 20; ++i) {
        cos.set_inputs(i % 2 == 0 ? "1" : "0");
        std::this_thread::sleep_for(5ms);
    }
    p.signal(SIGCONT);
    EXPECT_TRUE(await_line(p, "\"event\":\"lost\"", &seen, 20s)) << seen;
    p.signal(SIGTERM);
    const auto r = p.wait(20s);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "{\"event\":\"lost\",\"count\":")) << r.out;
}

TEST_F(iotool_vm, watch_sees_a_card_arrive_and_leave) {
    const auto t0 = std::chrono::steady_clock::now();
    io::test::tool_process p{cmd({"watch", "--json", "--count", "2", "--timeout", "60"})};
    std::string seen;
    ASSERT_TRUE(await_line(p, "\"event\":\"ready\"", &seen)) << seen;
    std::string name;
    {
        sim_card cos{"cos32"};
        name = cos.name();
        ASSERT_TRUE(await_line(p, "\"event\":\"added\"", &seen)) << seen;
    }
    const auto r = p.wait(30s);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "{\"event\":\"added\",\"card\":{\"name\":\"" + name + "\",\"model\":\"cos32\"")) << r.out;
    EXPECT_TRUE(contains(r.out, "{\"event\":\"removed\",\"card\":{\"name\":\"" + name + "\"")) << r.out;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 40s) << "--count 2 ends it, not the timeout";
    std::size_t changes = 0;
    for (const std::string what : {"\"event\":\"added\"", "\"event\":\"removed\""})
        for (auto at = r.out.find(what); at != std::string::npos; at = r.out.find(what, at + 1))
            ++changes;
    EXPECT_EQ(changes, 2U) << r.out;
}

TEST_F(iotool_vm, watch_reports_each_card_once_each_way) {
    // Without --count, every line watch prints is seen: each card created
    // and deleted is one 'added' and one 'removed', however udev batches
    // the events of its class device and its gpiochip.
    io::test::tool_process p{cmd({"watch", "--json", "--timeout", "120"})};
    std::string seen;
    ASSERT_TRUE(await_line(p, "\"event\":\"ready\"", &seen)) << seen;
    for (int round = 0; round < 3; ++round) {
        sim_card cos{"cos32"};
        ASSERT_TRUE(await_line(p, "{\"event\":\"added\",\"card\":{\"name\":\"" + cos.name() + "\"", &seen)) << seen;
    }
    settle();
    // A sentinel card after udev settled: watch reads its socket in order,
    // so once the sentinel is announced, every earlier change was printed.
    sim_card sentinel{"dio120"};
    ASSERT_TRUE(await_line(p, "{\"event\":\"added\",\"card\":{\"name\":\"" + sentinel.name() + "\"", &seen))
        << seen;
    p.signal(SIGTERM);
    const auto r = p.wait(20s);
    EXPECT_EQ(r.status, 0) << r.err;
    // Names may be reused from one round to the next: count by model.
    std::size_t added = 0, removed = 0;
    std::istringstream lines{r.out};
    for (std::string l; std::getline(lines, l);) {
        if (!contains(l, "\"model\":\"cos32\""))
            continue;
        added += contains(l, "{\"event\":\"added\"") ? 1U : 0U;
        removed += contains(l, "{\"event\":\"removed\"") ? 1U : 0U;
    }
    EXPECT_EQ(added, 3U) << r.out;
    EXPECT_EQ(removed, 3U) << r.out;
}

// --- loopback tests -------------------------------------------------------------------

TEST_F(iotool_vm, selftest_passes_with_loopback_and_fails_without) {
    sim_card dio{"mcc-pci-dio24"};
    sim_card cos{"cos32"};
    dio.loopback(true);
    cos.loopback(true);
    settle();
    auto r = run({"selftest", dio.name(), "--settle", "0"});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "  A0 -> B0        pass\n")) << r.out;
    EXPECT_TRUE(contains(r.out, "  CH7 -> CL3      pass\n")) << r.out;
    EXPECT_TRUE(contains(r.out, "PASS: all 24 line pairs")) << r.out;
    r = run({"selftest", cos.name(), "--json", "--settle", "0"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "{\"card\":\"" + cos.name() + "\",\"model\":\"cos32\",\"pass\":true,\"tested\":32,\"failed\":0,"
                                "\"lines\":[{\"output\":\"OUT0\",\"input\":\"IN0\",\"pass\":true,\"fault\":null}"))
        << r.out;
    dio.loopback(false);
    r = run({"selftest", dio.name(), "--settle", "0"});
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "  A0 -> B0        FAIL  stuck at 0\n")) << r.out;
    EXPECT_TRUE(contains(r.out, "FAIL: 24 of 24 line pairs")) << r.out;
}

TEST_F(iotool_vm, latency_prints_percentiles_and_a_histogram) {
    sim_card cos{"cos32"};
    cos.loopback(true);
    settle();
    auto r = run({"latency", cos.name(), "-n", "200"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "OUT0 -> IN0, 200 round trips")) << r.out;
    EXPECT_TRUE(contains(r.out, "p50       p99     p99.9       max")) << r.out;
    EXPECT_TRUE(contains(r.out, "wake-up histogram:")) << r.out;
    r = run({"latency", cos.name(), "-n", "50", "--output", "OUT7", "--input", "IN7", "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "\"output\":\"OUT7\",\"input\":\"IN7\",\"rounds\":50,\"edge_ns\":{\"min\":")) << r.out;
    EXPECT_TRUE(contains(r.out, "\"histogram\":[{\"lower_ns\":")) << r.out;
    cos.loopback(false);
    r = run({"latency", cos.name(), "-n", "5", "--timeout", "200ms"});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_TRUE(contains(r.err, "is OUT0 wired to IN0 (loopback)?")) << r.err;
}

TEST_F(iotool_vm, permission_is_status_4_outside_the_iocard_group) {
    sim_card cos{"cos32"};
    settle();
    auto r = io::test::run_tool({"/usr/sbin/runuser", "-u", "other-user", "--", iotool, "get", cos.name(), "IN0"});
    EXPECT_EQ(r.status, 4) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "group iocard")) << r.err;
    r = io::test::run_tool({"/usr/sbin/runuser", "-u", "iocard-user", "--", iotool, "get", cos.name(), "IN0"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "IN0=0\n");
}

// --- serial ---------------------------------------------------------------------------

/// The UART behind cable uartN: serial port N of QEMU's card.
std::string uart(unsigned n) {
    return io::find_card("qemu-pci-serial-4x").serial_ports.at(n).path;
}

TEST_F(iotool_vm, serial_show_and_set_like_stty) {
    const auto tty = uart(1);
    auto r = run({"serial", "qemu-pci-serial-4x@1", "show"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, tty + " (driver serial)")) << "the driver io::serial_port names: " << r.out;
    EXPECT_TRUE(contains(r.out, "modem lines  DTR")) << r.out;
    r = run({"serial", tty, "set", "9600", "7E1"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, tty + ": 9600 7E1\n");
    EXPECT_EQ(io::test::run("stty -F " + tty + " | grep -q 'speed 9600 baud'"), 0) << "stty agrees";
    r = run({"serial", tty, "--json"});
    EXPECT_TRUE(contains(r.out, "\"settings\":{\"text\":\"9600 7E1\",\"baud\":9600,\"data_bits\":7,\"parity\":\"even\"")) << r.out;
    EXPECT_TRUE(contains(r.out, "\"counters\":{\"rx\":")) << r.out;
    r = run({"serial", tty, "set", "--baud", "5000000"});
    EXPECT_EQ(r.status, 2) << r.err;  // beyond the 16550A: refused, EINVAL
    EXPECT_TRUE(contains(r.err, "5000000")) << r.err;
    r = run({"serial", tty, "set", "rs485"});
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_TRUE(contains(r.err, "RS-485 not supported by driver")) << r.err;
    EXPECT_EQ(run({"serial", tty, "set", "115200", "8N1"}).status, 0);
}

TEST_F(iotool_vm, serial_send_and_recv_across_the_cable) {
    io::test::cable cable;
    const auto tty = uart(0);
    ASSERT_EQ(run({"serial", tty, "set", "115200", "8N1"}).status, 0);
    cable.order("drain uart0");
    auto r = run({"serial", tty, "send", "hello from iotool", "--eol", "crlf"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(cable.order("hear uart0 5000"), "ok hello from iotool");

    io::test::tool_process p{cmd({"serial", tty, "recv", "--line", "--timeout", "20"})};
    io::test::wait_open(p.pid(), tty);
    std::this_thread::sleep_for(200ms);
    cable.order("say uart0 hi there");
    r = p.wait(30s);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "hi there\r\n");
}

TEST_F(iotool_vm, serial_loopback_passes_with_an_echo_and_fails_without) {
    io::test::cable cable;
    const auto tty = uart(2);
    ASSERT_EQ(run({"serial", tty, "set", "115200", "8N1"}).status, 0);
    ASSERT_EQ(cable.order("echo uart2 on"), "ok");
    auto r = run({"serial", tty, "loopback", "--bytes", "2048"});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "sent 2048 of 2048 bytes, received 2048, mismatched 0, missing 0")) << r.out;
    EXPECT_TRUE(contains(r.out, "driver counters: overrun 0, parity 0, framing 0")) << r.out;
    ASSERT_EQ(cable.order("echo ftdi0 on"), "ok");
    r = run({"serial", "ttyUSB0", "loopback", "--bytes", "1024", "--json", "--low-latency"});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "\"pass\":true,\"bytes\":1024,\"sent\":1024,\"received\":1024")) << r.out;
    ASSERT_EQ(cable.order("echo ftdi0 off"), "ok");
    ASSERT_EQ(cable.order("echo uart2 off"), "ok");
    r = run({"serial", tty, "loopback", "--bytes", "64", "--timeout", "300ms"});
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "nothing came back")) << r.out;
    cable.order("drain uart2");
}

}  // namespace
