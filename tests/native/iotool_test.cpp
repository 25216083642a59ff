// SPDX-License-Identifier: MIT
// iotool, run as the real binary on the build machine: usage and help of
// every command, exit statuses, errors that name what is valid, list --json
// without cards, and the serial commands over a pty pair.
#include "tool_runner.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fcntl.h>
#include <poll.h>
#include <string>
#include <termios.h>
#include <thread>
#include <unistd.h>
#include <vector>

using io::test::contains;
using io::test::run_tool;

namespace {

const std::string iotool = IOTOOL_PATH;

io::test::tool_result run(std::vector<std::string> args, const std::string& input = {}) {
    args.insert(args.begin(), iotool);
    return run_tool(args, input, std::chrono::seconds{30});
}

const char* const commands[] = {"list", "info", "get", "set", "port", "monitor",
                                "watch", "serial", "selftest", "latency", "modbus"};

TEST(iotool_cli, no_arguments_prints_usage_with_status_2) {
    const auto r = run({});
    EXPECT_EQ(r.status, 2);
    EXPECT_TRUE(contains(r.err, "Usage: iotool COMMAND")) << r.err;
}

TEST(iotool_cli, help_lists_every_command_and_the_exit_statuses) {
    const auto r = run({"--help"});
    EXPECT_EQ(r.status, 0);
    for (const auto* c : commands)
        EXPECT_TRUE(contains(r.out, std::string("\n  ") + c + " ")) << c;
    for (const auto* s : {"0  ok", "1  failure found", "2  usage", "3  not found", "4  permission", "5  I/O"})
        EXPECT_TRUE(contains(r.out, s)) << s;
}

TEST(iotool_cli, version) {
    const auto r = run({"--version"});
    EXPECT_EQ(r.status, 0);
    EXPECT_TRUE(contains(r.out, "iotool 0.")) << r.out;
}

TEST(iotool_cli, every_command_has_help_with_examples) {
    for (const auto* c : commands) {
        const auto r = run({c, "--help"});
        EXPECT_EQ(r.status, 0) << c << ": " << r.err;
        if (std::string(c) == "serial") {
            EXPECT_TRUE(contains(r.out, "Actions:")) << r.out;
            continue;
        }
        EXPECT_TRUE(contains(r.out, std::string("Usage: iotool ") + c)) << r.out;
        EXPECT_TRUE(contains(r.out, "Examples:\n  iotool " + std::string(c))) << r.out;
        EXPECT_FALSE(contains(r.out, "--card")) << c << ": positional arguments leak into the help";
    }
}

TEST(iotool_cli, every_serial_action_has_help_with_examples) {
    for (const auto* a : {"show", "set", "send", "recv", "term", "loopback"}) {
        for (const auto& args : {std::vector<std::string>{"serial", "ttyS4", a, "--help"},
                                 std::vector<std::string>{"serial", a, "--help"}}) {
            const auto r = run(args);
            EXPECT_EQ(r.status, 0) << a << ": " << r.err;
            EXPECT_TRUE(contains(r.out, std::string("Usage: iotool serial PORT ") + a)) << r.out;
            EXPECT_TRUE(contains(r.out, "Examples:\n  iotool serial")) << r.out;
        }
    }
}

TEST(iotool_cli, bad_command_lines_are_usage_errors_with_a_hint) {
    struct bad {
        std::vector<std::string> args;
        const char* says;
    };
    const bad cases[] = {
        {{"frobnicate"}, "unknown command 'frobnicate'; commands: list, info"},
        {{"list", "--bogus"}, "See 'iotool list --help'"},
        {{"info"}, "Usage: iotool info"},
        {{"get", "card0"}, "Usage: iotool get"},
        {{"set", "card0", "A0"}, "'A0' is not LINE=VALUE"},
        {{"set", "card0", "A0=2"}, "not a level; use 0 or 1"},
        {{"monitor", "card0", "--edges", "up"}, "--edges must be rising, falling or both"},
        {{"monitor", "card0", "--timeout", "soon"}, "not a duration"},
        {{"monitor", "card0", "--format", "xml"}, "--format must be text or json"},
        {{"watch", "--timeout", "-1"}, "not a duration"},
        {{"port", "card0", "A", "1", "2"}, "too many positional options"},
        {{"selftest", "card0", "--settle", "x"}, "not a duration"},
        {{"latency", "card0", "-n", "0"}, "--rounds must be at least 1"},
        {{"serial"}, "Usage: iotool serial PORT"},
        {{"serial", "send"}, "give the port first"},
        {{"serial", "ttyS4", "fly"}, "unknown action 'fly'"},
        {{"serial", "ttyS4", "set", "--parity", "weird"}, "--parity: parity 'weird' is not valid; allowed none, odd, even, mark, space (or N, O, E, M, S)"},
        {{"serial", "ttyS4", "set", "--baud", "10"}, "allowed 50 to 20000000"},
        {{"serial", "ttyS4", "send"}, "exactly one of TEXT, --hex or --file"},
        {{"serial", "ttyS4", "send", "--hex", "0g"}, "is not hex bytes"},
    };
    for (const auto& c : cases) {
        const auto r = run(c.args);
        EXPECT_EQ(r.status, 2) << c.args.back() << ": " << r.err;
        EXPECT_TRUE(contains(r.err, c.says)) << "expected '" << c.says << "' in: " << r.err;
        EXPECT_TRUE(r.err.rfind("iotool: ", 0) == 0 || contains(r.err, "Usage:")) << r.err;
    }
}

TEST(iotool_cli, list_json_is_a_stable_document_even_without_cards) {
    const auto r = run({"list", "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out.rfind("{\"version\":1,\"cards\":[", 0), 0U) << r.out;
    EXPECT_EQ(r.out.back(), '\n');
    if (contains(r.out, "\"cards\":[]") && contains(r.out, "\"modules\":[]")) {
        EXPECT_EQ(r.out, "{\"version\":1,\"cards\":[],\"modules\":[]}\n");
    }
    const auto text = run({"list"});
    EXPECT_EQ(text.status, 0);
}

TEST(iotool_cli, unknown_cards_and_ports_are_not_found_and_listed) {
    for (const auto& args : {std::vector<std::string>{"info", "no-such-card"},
                             std::vector<std::string>{"get", "no-such-card", "A0"},
                             std::vector<std::string>{"set", "no-such-card", "A0=1"},
                             std::vector<std::string>{"port", "no-such-card", "A"},
                             std::vector<std::string>{"monitor", "no-such-card"},
                             std::vector<std::string>{"selftest", "no-such-card"},
                             std::vector<std::string>{"latency", "no-such-card"}}) {
        const auto r = run(args);
        EXPECT_EQ(r.status, 3) << args.front() << ": " << r.err;
        EXPECT_TRUE(contains(r.err, "no card 'no-such-card'; cards present:")) << r.err;
    }
    auto r = run({"serial", "/dev/no-such-tty", "show"});
    EXPECT_EQ(r.status, 3) << r.err;
    EXPECT_TRUE(contains(r.err, "no serial port /dev/no-such-tty; serial ports of known cards:")) << r.err;
    r = run({"serial", "no-such-card@1"});
    EXPECT_EQ(r.status, 3) << r.err;
    r = run({"serial", "/dev/null", "show"});
    EXPECT_EQ(r.status, 3) << r.err;
    EXPECT_TRUE(contains(r.err, "not a serial port")) << r.err;
}

// --- serial over a pty pair -----------------------------------------------------

class iotool_pty : public ::testing::Test {
protected:
    void SetUp() override {
        master_ = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        ASSERT_GE(master_, 0);
        ASSERT_EQ(::grantpt(master_), 0);
        ASSERT_EQ(::unlockpt(master_), 0);
        path_ = ::ptsname(master_);
        // Held open so that the pty keeps its settings between commands.
        slave_ = ::open(path_.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
        ASSERT_GE(slave_, 0);
        termios t{};
        ::tcgetattr(master_, &t);
        ::cfmakeraw(&t);
        ::tcsetattr(master_, TCSANOW, &t);
    }
    void TearDown() override {
        stop_echo();
        ::close(slave_);
        ::close(master_);
    }

    std::string read_master(std::size_t n, int timeout_ms = 5000) {
        std::string got;
        while (got.size() < n) {
            pollfd p{master_, POLLIN, 0};
            if (::poll(&p, 1, timeout_ms) <= 0)
                break;
            char b[256];
            const auto k = ::read(master_, b, sizeof b);
            if (k <= 0)
                break;
            got.append(b, static_cast<std::size_t>(k));
        }
        return got;
    }
    void write_master(const std::string& s) { ASSERT_EQ(::write(master_, s.data(), s.size()), static_cast<ssize_t>(s.size())); }

    /// The far end echoes everything back, like a loopback plug.
    void start_echo() {
        echo_ = std::thread{[this] {
            while (!stop_) {
                pollfd p{master_, POLLIN, 0};
                if (::poll(&p, 1, 50) <= 0)
                    continue;
                char b[512];
                const auto k = ::read(master_, b, sizeof b);
                if (k > 0)
                    (void)!::write(master_, b, static_cast<std::size_t>(k));
            }
        }};
    }
    void stop_echo() {
        stop_ = true;
        if (echo_.joinable())
            echo_.join();
    }


    int master_ = -1;
    int slave_ = -1;
    std::string path_;
    std::thread echo_;
    std::atomic<bool> stop_{false};
};

TEST_F(iotool_pty, show_reads_settings_without_changing_them) {
    auto r = run({"serial", path_, "show"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, path_ + " (driver pty)")) << r.out;
    EXPECT_TRUE(contains(r.out, "settings     38400 8N1")) << r.out;
    r = run({"serial", path_, "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "{\"port\":\"" + path_ + "\",\"driver\":\"pty\",\"settings\":{\"text\":\"38400 8N1\","
                                "\"baud\":38400,\"data_bits\":8,\"parity\":\"none\",\"stop_bits\":1,"
                                "\"flow_control\":\"none\",\"mode\":\"rs232\"},\"settings_error\":null"))
        << r.out;
}

TEST_F(iotool_pty, set_keeps_the_settings_after_iotool_exits) {
    auto r = run({"serial", path_, "set", "57600", "8N2", "--flow", "xon_xoff"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, path_ + ": 57600 8N2 xon_xoff\n");
    termios t{};
    ASSERT_EQ(::tcgetattr(slave_, &t), 0);
    EXPECT_EQ(::cfgetospeed(&t), B57600);
    EXPECT_NE(t.c_cflag & CSTOPB, 0U);
    r = run({"serial", path_, "show"});
    EXPECT_TRUE(contains(r.out, "settings     57600 8N2 xon_xoff")) << r.out;
    r = run({"serial", path_, "set", "--baud", "9600", "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "\"baud\":9600,\"data_bits\":8,\"parity\":\"none\",\"stop_bits\":2")) << r.out;
}

TEST_F(iotool_pty, send_text_with_escapes_and_hex) {
    auto r = run({"serial", path_, "send", "hello\\r\\n"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(read_master(7), "hello\r\n");
    r = run({"serial", path_, "send", "--hex", "01 03 ff", "--eol", "crlf"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(read_master(5), std::string("\x01\x03\xff\r\n", 5));
    r = run({"serial", path_, "send", "--file", "-"}, "from stdin");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(read_master(10), "from stdin");
}

TEST_F(iotool_pty, recv_stops_at_count_line_or_timeout) {
    io::test::tool_process p{{iotool, "serial", path_, "recv", "--count", "5", "--timeout", "10s"}};
    io::test::wait_open(p.pid(), path_);
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
    write_master("abcde");
    auto r = p.wait();
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "abcde");

    io::test::tool_process line{{iotool, "serial", path_, "recv", "--line", "--hex"}};
    io::test::wait_open(line.pid(), path_);
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
    write_master("ok\nmore");
    r = line.wait();
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "00000000  6f 6b 0a")) << r.out;
    EXPECT_TRUE(contains(r.out, "|ok.|")) << r.out;

    r = run({"serial", path_, "recv", "--timeout", "200ms"});
    EXPECT_EQ(r.status, 1) << "nothing arrived: status 1";
    EXPECT_TRUE(contains(r.err, "0 bytes received")) << r.err;
}

TEST_F(iotool_pty, loopback_passes_with_an_echo_and_fails_without) {
    start_echo();
    auto r = run({"serial", path_, "loopback", "--bytes", "2000", "--block", "100"});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "PASS")) << r.out;
    EXPECT_TRUE(contains(r.out, "sent 2000 of 2000 bytes, received 2000, mismatched 0, missing 0")) << r.out;
    r = run({"serial", path_, "loopback", "--bytes", "300", "--json"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "\"pass\":true,\"bytes\":300,\"sent\":300,\"received\":300,\"mismatched\":0")) << r.out;
    stop_echo();
    read_master(100000, 100);
    r = run({"serial", path_, "loopback", "--bytes", "64", "--timeout", "200ms"});
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "FAIL")) << r.out;
    EXPECT_TRUE(contains(r.out, "nothing came back")) << r.out;
}

TEST_F(iotool_pty, term_forwards_stdin_and_prints_replies) {
    start_echo();
    const auto r = run({"serial", path_, "term", "--linger", "300ms"}, "ping\n");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "ping\n");
}

}  // namespace
