// SPDX-License-Identifier: MIT
// io::modbus_module against simulated SeaI/O modules (seaio_sim.py, on
// pymodbus): Modbus/TCP on 127.0.0.1 and Modbus RTU over a socat pty pair.
// Every wait is for a condition the simulator reports (its request count, a
// queued event); the deadlines only end a test that would otherwise hang.
#include <io/error.hpp>
#include <io/event_loop.hpp>
#include <io/modbus.hpp>

#include "modbus_events.hpp"
#include "tool_runner.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <poll.h>
#include <spawn.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace {

using namespace std::chrono_literals;
using io::modbus_event;
using kind = io::modbus_event::kind;
constexpr auto deadline = 20s;  // only for a test that would hang otherwise

// A child process with its stdin (and stdout, or stderr) on pipes.
class child {
public:
    explicit child(std::vector<std::string> argv, bool read_stderr = false) {
        int in[2];
        int out[2];
        if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0)
            throw std::runtime_error("pipe");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], read_stderr ? 2 : 1);
        std::vector<char*> args;
        for (auto& a : argv)
            args.push_back(a.data());
        args.push_back(nullptr);
        const int rc = ::posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        ::close(in[0]);
        ::close(out[1]);
        to_ = in[1];
        from_ = out[0];
        if (rc != 0)
            throw std::runtime_error("spawn " + argv[0] + ": " + std::strerror(rc));
    }
    ~child() {
        ::close(to_);  // the simulator ends at the end of its input
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        ::close(from_);
    }
    child(const child&) = delete;
    child& operator=(const child&) = delete;

    // The next line of output (without its newline).
    std::string line() {
        std::string s;
        const auto end = std::chrono::steady_clock::now() + deadline;
        for (;;) {
            pollfd p{from_, POLLIN, 0};
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
            if (left <= 0ms || ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
                throw std::runtime_error("no line from the child; so far '" + s + "'");
            char c = 0;
            if (::read(from_, &c, 1) != 1)
                throw std::runtime_error("the child ended; so far '" + s + "'");
            if (c == '\n')
                return s;
            s += c;
        }
    }
    // Reads lines until one starts with `prefix`; returns it.
    std::string line_starting(const std::string& prefix) {
        for (;;)
            if (auto l = line(); l.starts_with(prefix) || l.find(prefix) != std::string::npos)
                return l;
    }
    void send(const std::string& s) {
        const std::string l = s + "\n";
        if (::write(to_, l.data(), l.size()) != static_cast<ssize_t>(l.size()))
            throw std::runtime_error("write to the child");
    }

private:
    pid_t pid_ = -1;
    int to_ = -1;
    int from_ = -1;
};

// seaio_sim.py serving the given UNIT:MODEL specs.
class simulator {
public:
    simulator(std::vector<std::string> args) : proc_{with_script(std::move(args))} {
        const auto l = proc_.line_starting("ready");
        if (l.size() > 6)
            port_ = std::stoi(l.substr(6));
    }
    std::string cmd(const std::string& c) {
        proc_.send(c);
        return proc_.line();
    }
    unsigned requests(unsigned unit) {
        const auto r = cmd("requests " + std::to_string(unit));
        return static_cast<unsigned>(std::stoul(r.substr(9)));
    }
    int port() const { return port_; }

private:
    static std::vector<std::string> with_script(std::vector<std::string> args) {
        args.insert(args.begin(), SEAIO_SIM);
        return args;
    }
    child proc_;
    int port_ = 0;
};

// A temporary directory, removed with everything in it at the end.
class temp_dir {
public:
    temp_dir() : path_{(std::filesystem::temp_directory_path() / "libio-modbus-XXXXXX").string()} {
        if (::mkdtemp(path_.data()) == nullptr)
            throw std::runtime_error("mkdtemp");
    }
    ~temp_dir() { std::filesystem::remove_all(path_); }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// A pty pair joined by socat: the bus on a(), the simulator on b(), links
// in `dir`. socat removes the links when it ends, so a pair made again in
// the same directory is the same device paths coming back (a USB adapter
// plugged in again).
class pty_pair {
public:
    explicit pty_pair(const std::string& dir) : dir_{dir}, socat_{socat_args(dir_), true} { started(); }
    pty_pair() : own_{std::in_place}, dir_{own_->path()}, socat_{socat_args(dir_), true} { started(); }
    std::string a() const { return dir_ + "/a"; }
    std::string b() const { return dir_ + "/b"; }

private:
    static std::vector<std::string> socat_args(const std::string& dir) {
        return {"/usr/bin/socat", "-d", "-d", "pty,raw,echo=0,link=" + dir + "/a", "pty,raw,echo=0,link=" + dir + "/b"};
    }
    void started() { socat_.line_starting("starting data transfer loop"); }
    std::optional<temp_dir> own_;  // first: made before, removed after socat
    std::string dir_;
    child socat_;
};

template <typename P>
bool run_until(io::event_loop& loop, P pred) {
    return io::test::run_until(loop, pred, deadline);
}
using collector = io::test::modbus_collector;
void wait_polls(io::event_loop& loop, simulator& sim, unsigned unit, unsigned n) {
    io::test::wait_polls(loop, sim, unit, n, deadline);
}

std::string tcp_uri(const simulator& sim, unsigned unit, const std::string& model, const std::string& extra = "") {
    return "modbus-tcp://127.0.0.1:" + std::to_string(sim.port()) + "?unit=" + std::to_string(unit) +
           "&model=" + model + "&timeout=2000" + extra;
}

TEST(ModbusTcp, Model410ReadsInputsAndDrivesOutputs) {
    simulator sim({"--tcp", "1:410"});
    io::modbus_module m(tcp_uri(sim, 1, "410"));
    EXPECT_EQ(m.info().model, "seaio-410");
    EXPECT_EQ(m.read_port("DI"), 0U);
    EXPECT_EQ(sim.cmd("di 1 3 1"), "ok");
    EXPECT_EQ(sim.cmd("di 1 15 1"), "ok");
    EXPECT_TRUE(m.get(m.find_line("DI3")));
    EXPECT_FALSE(m.get(m.find_line("DI4")));
    EXPECT_EQ(m.read_port("DI"), 0x8008U);

    m.set(m.find_line("DO5"), true);
    EXPECT_EQ(sim.cmd("do 1"), "do 0x20");
    EXPECT_TRUE(m.get(m.find_line("DO5")));
    m.write_port("DO", 0xA5A5);
    EXPECT_EQ(sim.cmd("do 1"), "do 0xa5a5");
    EXPECT_EQ(m.read_port("DO"), 0xA5A5U);
    m.set(m.find_line("DO0"), false);
    EXPECT_EQ(sim.cmd("do 1"), "do 0xa5a4");

    EXPECT_THROW(m.set(m.find_line("DI0"), true), io::invalid_argument);
    EXPECT_THROW(m.write_port("DO", 0x10000), io::invalid_argument);
    EXPECT_THROW(m.write_port("DI", 1), io::invalid_argument);
    EXPECT_EQ(sim.cmd("do 1"), "do 0xa5a4");  // nothing refused reached the module
}

TEST(ModbusTcp, Model430Has32InputsAndNoOutputs) {
    simulator sim({"--tcp", "7:430"});
    io::modbus_module m(tcp_uri(sim, 7, "430"));
    EXPECT_EQ(sim.cmd("di 7 31 1"), "ok");
    EXPECT_EQ(sim.cmd("di 7 0 1"), "ok");
    EXPECT_EQ(m.read_port("DI"), 0x80000001U);
    EXPECT_TRUE(m.get(31));
    EXPECT_THROW(m.find_line("DO0"), io::invalid_argument);
    EXPECT_THROW(m.read_port("DO"), io::invalid_argument);
    EXPECT_EQ(sim.requests(7), 2U);
}

TEST(ModbusTcp, Model470DigitalLines) {
    simulator sim({"--tcp", "3:470"});
    io::modbus_module m(tcp_uri(sim, 3, "470"));
    EXPECT_EQ(m.line_name(8), "DO0");
    EXPECT_EQ(sim.cmd("di 3 7 1"), "ok");
    EXPECT_EQ(m.read_port("DI"), 0x80U);
    m.write_port("DO", 0x81);
    EXPECT_EQ(sim.cmd("do 3"), "do 0x81");
}

TEST(ModbusTcp, Model470AnalogChannels) {
    simulator sim({"--tcp", "3:470", "4:410"});
    io::modbus_module m(tcp_uri(sim, 3, "470"));
    EXPECT_EQ(sim.cmd("ai 3 15 54321"), "ok");
    EXPECT_EQ(sim.cmd("ai 3 0 7"), "ok");
    EXPECT_EQ(m.read_analog("AI15"), 54321U);
    EXPECT_EQ(m.read_analog("AI0"), 7U);
    m.write_analog("AO1", 65535);
    m.write_analog("AO0", 1234);
    EXPECT_EQ(sim.cmd("ao 3"), "ao 1234 65535");
    try {
        (void)m.read_analog("AI16");
        FAIL();
    } catch (const io::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("has no analog input 'AI16'; its analog inputs are AI0..AI15"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_THROW(m.write_analog("AO2", 1), io::invalid_argument);
    EXPECT_THROW(m.write_analog("AI0", 1), io::invalid_argument);
    io::modbus_module d(tcp_uri(sim, 4, "410"));
    try {
        (void)d.read_analog("AI0");
        FAIL();
    } catch (const io::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("its analog inputs are none"), std::string::npos) << e.what();
    }
    EXPECT_EQ(sim.requests(4), 0U);  // refused before the bus
}

TEST(ModbusTcp, WrongUnitIsNotAnswered) {
    simulator sim({"--tcp", "1:410"});
    io::modbus_module m(tcp_uri(sim, 2, "410", "&retries=0"));
    try {
        (void)m.read_port("DI");
        FAIL() << "read of an absent unit succeeded";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::timed_out) << e.what();
        EXPECT_NE(std::string(e.what()).find("read DI of modbus-tcp://127.0.0.1:"), std::string::npos) << e.what();
    }
}

TEST(ModbusTcp, PollingGivesEachChangeOnce) {
    simulator sim({"--tcp", "1:410"});
    io::modbus_module m(tcp_uri(sim, 1, "410"));
    io::event_loop loop;
    collector c(loop, m);
    m.start_polling(5ms);
    wait_polls(loop, sim, 1, 1);  // the first poll took the levels

    EXPECT_EQ(sim.cmd("di 1 3 1"), "ok");
    ASSERT_TRUE(run_until(loop, [&] { return !c.events.empty(); }));
    wait_polls(loop, sim, 1, 3);
    ASSERT_EQ(c.events.size(), 1U);
    const auto& e = c.events[0];
    EXPECT_EQ(e.what, kind::edge);
    EXPECT_EQ(e.line, 3U);
    EXPECT_EQ(e.change, io::edge::rising);
    EXPECT_EQ(e.seqno, 1U);
    EXPECT_EQ(e.line_seqno, 1U);
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    EXPECT_LE(e.timestamp_ns, static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000U +
                                  static_cast<std::uint64_t>(now.tv_nsec));

    EXPECT_EQ(sim.cmd("di 1 3 0"), "ok");
    EXPECT_EQ(sim.cmd("di 1 12 1"), "ok");
    ASSERT_TRUE(run_until(loop, [&] { return c.events.size() >= 3; }));
    wait_polls(loop, sim, 1, 3);
    ASSERT_EQ(c.events.size(), 3U);
    std::uint64_t falls3 = 0;
    std::uint64_t rises12 = 0;
    for (std::size_t i = 1; i < 3; ++i) {
        const auto& ev = c.events[i];
        EXPECT_EQ(ev.what, kind::edge);
        EXPECT_EQ(ev.seqno, i + 1);
        EXPECT_GE(ev.timestamp_ns, c.events[i - 1].timestamp_ns);
        if (ev.line == 3 && ev.change == io::edge::falling && ev.line_seqno == 2)
            ++falls3;
        if (ev.line == 12 && ev.change == io::edge::rising && ev.line_seqno == 1)
            ++rises12;
    }
    EXPECT_EQ(falls3, 1U);
    EXPECT_EQ(rises12, 1U);
    EXPECT_EQ(m.lost_events(), 0U);
    EXPECT_TRUE(m.present());
}

// The levels the polls read, without a request; a duplicate on another
// thread shares the bus but not the polling.
TEST(ModbusTcp, InputLevelsAndADuplicateOnAnotherThread) {
    simulator sim({"--tcp", "1:410"});
    io::modbus_module m(tcp_uri(sim, 1, "410"));
    io::event_loop loop;
    collector c(loop, m);
    EXPECT_FALSE(m.input_levels());  // before the first answered poll
    EXPECT_EQ(sim.cmd("di 1 6 1"), "ok");
    m.start_polling(5ms);
    wait_polls(loop, sim, 1, 1);
    EXPECT_EQ(m.input_levels(), std::uint64_t{1} << 6);
    EXPECT_EQ(sim.cmd("di 1 0 1"), "ok");
    ASSERT_TRUE(run_until(loop, [&] { return !c.events.empty(); }));
    EXPECT_EQ(m.input_levels(), (std::uint64_t{1} << 6) | 1U);

    auto other = m.duplicate();
    EXPECT_EQ(other.info().location, m.info().location);
    EXPECT_EQ(other.unit(), 1U);
    EXPECT_EQ(&other.model(), &m.model());
    EXPECT_FALSE(other.input_levels());  // its own polling, which it does not do
    std::error_code ec;
    std::thread t([&] { other.set(other.find_line("DO4"), true, ec); });
    t.join();
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(sim.cmd("do 1"), "do 0x10");
    EXPECT_EQ(m.read_port("DO"), 0x10U);
    std::array<io::modbus_event, 4> none{};
    EXPECT_EQ(other.read_events(none), 0U);  // the edge above was m's

    const io::modbus_module outputs_only(tcp_uri(sim, 1, "440"));
    EXPECT_FALSE(outputs_only.input_levels());
}

// A module that answers with an exception, then answers again.
TEST(ModbusTcp, ExceptionRepliesMakeTheModuleGoneUntilItAnswers) {
    simulator sim({"--tcp", "1:410"});
    io::modbus_module m(tcp_uri(sim, 1, "410"));
    io::event_loop loop;
    collector c(loop, m);
    m.start_polling(5ms);
    wait_polls(loop, sim, 1, 1);

    EXPECT_EQ(sim.cmd("fault 1 exception"), "ok");
    ASSERT_TRUE(run_until(loop, [&] { return !c.events.empty(); }));
    wait_polls(loop, sim, 1, 3);
    ASSERT_EQ(c.events.size(), 1U);
    EXPECT_EQ(c.events[0].what, kind::gone);
    EXPECT_EQ(c.events[0].error, io::modbus_errc::server_device_failure);
    EXPECT_FALSE(m.present());
    std::error_code ec;
    (void)m.get(0, ec);
    EXPECT_EQ(ec, io::modbus_errc::server_device_failure);

    EXPECT_EQ(sim.cmd("di 1 1 1"), "ok");  // changed while gone
    EXPECT_EQ(sim.cmd("fault 1 none"), "ok");
    ASSERT_TRUE(run_until(loop, [&] { return c.events.size() >= 3; }));
    wait_polls(loop, sim, 1, 3);
    ASSERT_EQ(c.events.size(), 3U);
    EXPECT_EQ(c.events[1].what, kind::back);
    EXPECT_EQ(c.events[2].what, kind::edge);
    EXPECT_EQ(c.events[2].line, 1U);
    EXPECT_EQ(c.events[2].change, io::edge::rising);
    EXPECT_EQ(c.events[2].seqno, 3U);
    EXPECT_TRUE(m.present());
}

TEST(ModbusTcp, SilentModuleTimesOutThenComesBack) {
    simulator sim({"--tcp", "1:430"});
    io::modbus_module m(tcp_uri(sim, 1, "430", "&retries=0"));
    io::event_loop loop;
    collector c(loop, m);
    EXPECT_EQ(m.polls(), 0U);
    EXPECT_TRUE(m.present());  // before the first poll
    m.start_polling(5ms);
    wait_polls(loop, sim, 1, 1);
    ASSERT_TRUE(run_until(loop, [&] { return m.polls() >= 1; }));  // the poll the simulator answered has completed
    EXPECT_EQ(sim.cmd("fault 1 silent"), "ok");
    ASSERT_TRUE(run_until(loop, [&] { return !c.events.empty(); }));
    EXPECT_EQ(c.events[0].what, kind::gone);
    EXPECT_EQ(c.events[0].error, std::errc::timed_out);
    const auto polls = m.polls();
    EXPECT_FALSE(m.present());
    ASSERT_TRUE(run_until(loop, [&] { return m.polls() > polls; }));  // unanswered polls count too
    EXPECT_FALSE(m.present());
    EXPECT_EQ(sim.cmd("fault 1 none"), "ok");
    ASSERT_TRUE(run_until(loop, [&] { return c.events.size() >= 2; }));
    wait_polls(loop, sim, 1, 2);
    ASSERT_EQ(c.events.size(), 2U);
    EXPECT_EQ(c.events[1].what, kind::back);
    EXPECT_EQ(m.read_port("DI"), 0U);
}

// A caller's request waits for the poll on the wire and no longer, even
// while the bus thread polls back to back (a module that times out, polled
// at a period shorter than its timeout). Counted in polls, not timed: the
// silent module's polls completed during the caller's get() are the one on
// the wire and at most one that started between the two reads of polls().
TEST(ModbusTcp, ACallerIsNotStarvedByPollsOfASilentModule) {
    simulator sim({"--tcp", "1:410", "2:430"});
    io::modbus_bus bus{"modbus-tcp://127.0.0.1:" + std::to_string(sim.port()) + "?timeout=100&retries=0"};
    io::modbus_module a(bus, 1, "410");
    io::modbus_module b(bus, 2, "430");
    EXPECT_EQ(sim.cmd("fault 2 silent"), "ok");
    EXPECT_EQ(sim.cmd("di 1 3 1"), "ok");
    b.start_polling(1ms);
    io::event_loop loop;
    ASSERT_TRUE(run_until(loop, [&] { return b.polls() >= 2; }));  // polling back to back, each a timeout
    for (int i = 0; i < 5; ++i) {
        const auto before = b.polls();
        EXPECT_TRUE(a.get(a.find_line("DI3")));
        EXPECT_LE(b.polls() - before, 2U) << "get() number " << i << " waited for polls of the silent module";
    }
    EXPECT_FALSE(b.present());
}

TEST(ModbusTcp, NoServerIsConnectionRefused) {
    // A port of our own that nobody listens on: bound, never listened.
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ASSERT_EQ(::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len), 0);
    io::modbus_module m("modbus-tcp://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "?unit=1&model=410");
    std::error_code ec;
    (void)m.get(0, ec);
    EXPECT_EQ(ec, std::errc::connection_refused);
    ::close(s);
}

// Two modules on one RS-485 bus, RTU over a pty pair.
class ModbusRtu : public ::testing::Test {
protected:
    pty_pair ptys;
    simulator sim{{"--rtu", ptys.b(), "1:410", "2:430"}};
    io::modbus_bus bus{"modbus-rtu:" + ptys.a() + "?baud=19200&parity=even&timeout=2000"};
};

TEST_F(ModbusRtu, TwoModulesOnOneBus) {
    io::modbus_module a(bus, 1, "410");
    io::modbus_module b(bus, 2, "430");
    EXPECT_EQ(sim.cmd("di 1 0 1"), "ok");
    EXPECT_EQ(sim.cmd("di 2 20 1"), "ok");
    EXPECT_EQ(a.read_port("DI"), 0x1U);
    EXPECT_EQ(b.read_port("DI"), 0x100000U);
    a.write_port("DO", 0x8001);
    EXPECT_EQ(sim.cmd("do 1"), "do 0x8001");
    EXPECT_EQ(a.read_port("DO"), 0x8001U);
    EXPECT_EQ(sim.requests(1), 3U);
    EXPECT_EQ(sim.requests(2), 1U);
}

TEST_F(ModbusRtu, PollingTwoModulesAttributesEachChange) {
    io::modbus_module a(bus, 1, "410");
    io::modbus_module b(bus, 2, "430");
    io::event_loop loop;
    collector ca(loop, a);
    collector cb(loop, b);
    a.start_polling(5ms);
    b.start_polling(5ms);
    wait_polls(loop, sim, 1, 1);
    wait_polls(loop, sim, 2, 1);
    EXPECT_EQ(sim.cmd("di 2 31 1"), "ok");
    ASSERT_TRUE(run_until(loop, [&] { return !cb.events.empty(); }));
    wait_polls(loop, sim, 1, 2);
    wait_polls(loop, sim, 2, 2);
    EXPECT_TRUE(ca.events.empty());
    ASSERT_EQ(cb.events.size(), 1U);
    EXPECT_EQ(cb.events[0].line, 31U);
    EXPECT_EQ(cb.events[0].change, io::edge::rising);
}

TEST_F(ModbusRtu, BadCrcMakesOneModuleGoneWhileTheOtherWorks) {
    io::modbus_module a(bus, 1, "410");
    io::modbus_module b(bus, 2, "430");
    io::event_loop loop;
    collector cb(loop, b);
    b.start_polling(5ms);
    wait_polls(loop, sim, 2, 1);
    EXPECT_EQ(sim.cmd("fault 2 badcrc"), "ok");
    ASSERT_TRUE(run_until(loop, [&] { return !cb.events.empty(); }));
    EXPECT_EQ(cb.events[0].what, kind::gone);
    EXPECT_EQ(cb.events[0].error, io::modbus_errc::bad_crc);
    EXPECT_EQ(sim.cmd("di 1 9 1"), "ok");
    EXPECT_EQ(a.read_port("DI"), 0x200U);  // the other module on the bus is unaffected
    EXPECT_EQ(sim.cmd("fault 2 none"), "ok");
    ASSERT_TRUE(run_until(loop, [&] { return cb.events.size() >= 2; }));
    wait_polls(loop, sim, 2, 2);
    ASSERT_EQ(cb.events.size(), 2U);
    EXPECT_EQ(cb.events[1].what, kind::back);
}

// Requests on an RTU bus are 3.5 characters apart at least (Modbus over
// serial line V1.02, 2.5.1.1): at 19200 baud 8E1, 11 bits a character,
// 3.5 x 11 / 19200 s = 2.005 ms. A pty delivers at once, so only the gap
// the bus keeps separates the requests.
TEST_F(ModbusRtu, RequestsKeepTheInterFrameGap) {
    io::modbus_module a(bus, 1, "410");
    (void)a.read_port("DI");
    constexpr int reads = 5;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reads; ++i)
        (void)a.read_port("DI");
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, reads * 2005us);
}

TEST_F(ModbusRtu, SilentModuleTimesOut) {
    io::modbus_module b(bus, 2, "430");
    EXPECT_EQ(sim.cmd("fault 2 silent"), "ok");
    std::error_code ec;
    (void)b.get(0, ec);
    EXPECT_EQ(ec, std::errc::timed_out);
    EXPECT_EQ(sim.requests(2), 3U);  // the request and its two retries
    EXPECT_EQ(sim.cmd("fault 2 none"), "ok");
    EXPECT_EQ(b.read_port("DI"), 0U);
}

TEST_F(ModbusRtu, ScanFindsTheUnitsThatAnswer) {
    EXPECT_EQ(sim.cmd("fault 2 exception"), "ok");  // an exception reply is an answer
    EXPECT_EQ(bus.scan(1, 3), (std::vector<unsigned>{1, 2}));  // 3 costs one timeout
    EXPECT_EQ(sim.cmd("fault 2 badcrc"), "ok");  // a corrupt one is not
    EXPECT_EQ(bus.scan(1, 2), (std::vector<unsigned>{1}));
    EXPECT_EQ(sim.requests(2), 2U);  // one request per unit, no retries
    EXPECT_THROW((void)bus.scan(0, 4), io::invalid_argument);
    EXPECT_THROW((void)bus.scan(5, 4), io::invalid_argument);
    EXPECT_THROW((void)bus.scan(1, 248), io::invalid_argument);
}

TEST_F(ModbusRtu, GetConfigIdentifiesTheModel) {
    EXPECT_EQ(bus.identify(1).name, "410");
    EXPECT_EQ(bus.identify(2).name, "430");
    io::modbus_module b(bus, 2);
    EXPECT_EQ(b.model().name, "430");
    EXPECT_EQ(b.info().location, "modbus-rtu:" + ptys.a() + "?baud=19200&parity=even&unit=2&model=430&timeout=2000");
    EXPECT_EQ(sim.cmd("fault 2 badcrc"), "ok");
    try {
        (void)bus.identify(2);
        FAIL() << "a reply with a bad CRC identified a model";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), io::modbus_errc::bad_crc) << e.what();
    }
    EXPECT_EQ(sim.cmd("fault 2 exception"), "ok");
    try {
        (void)bus.identify(2);
        FAIL() << "an exception reply identified a model";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), io::modbus_errc::server_device_failure) << e.what();
    }
    EXPECT_EQ(sim.cmd("fault 2 none"), "ok");
    EXPECT_EQ(bus.identify(2).name, "430");  // and the bus is in step again
    EXPECT_EQ(b.read_port("DI"), 0U);
}

TEST(ModbusTcp, GetConfigIdentifiesTheModel) {
    simulator sim({"--tcp", "1:470", "2:520"});
    const auto base = "modbus-tcp://127.0.0.1:" + std::to_string(sim.port());
    io::modbus_module m(base + "?unit=1&timeout=2000");
    EXPECT_EQ(m.model().name, "470");
    EXPECT_EQ(sim.cmd("di 1 7 1"), "ok");
    EXPECT_EQ(m.read_port("DI"), 0x80U);
    try {
        io::modbus_module n(base + "?unit=2&timeout=2000");
        FAIL() << "model code 0x00 identified a model";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::not_supported);
        EXPECT_NE(std::string(e.what()).find("model code 0x00 (a model outside the SeaI/O 4xx series); give the model"),
                  std::string::npos)
            << e.what();
    }
    io::modbus_module n(base + "?unit=2&model=520&timeout=2000");  // given, it works
    EXPECT_EQ(n.read_port("DO"), 0U);
}

// iotool on a module named by its URI: the real binary, its output and exit statuses.
TEST(ModbusIotool, GetSetPortInfoMonitor) {
    simulator sim({"--tcp", "1:410"});
    const std::string uri = tcp_uri(sim, 1, "410");
    const auto iotool = [](std::vector<std::string> args) {
        args.insert(args.begin(), IOTOOL_PATH);
        return io::test::run_tool(args);
    };
    EXPECT_EQ(sim.cmd("di 1 2 1"), "ok");
    auto r = iotool({"get", uri, "DI2", "DI3", "0"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "DI2=1 DI3=0 DI0=0\n");
    r = iotool({"set", uri, "DO1=1", "DO15=high"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(sim.cmd("do 1"), "do 0x8002");
    r = iotool({"port", uri, "DO"});
    EXPECT_EQ(r.out, "0x8002\n");
    r = iotool({"port", uri, "DO", "0x3"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(sim.cmd("do 1"), "do 0x3");
    r = iotool({"port", uri, "DI", "--json"});
    EXPECT_NE(r.out.find("\"port\":\"DI\",\"width\":16,\"value\":4}"), std::string::npos) << r.out;
    r = iotool({"info", uri});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("unit 1, answering"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("port DO: DO0..DO15 (outputs)"), std::string::npos) << r.out;
    r = iotool({"info", "modbus-tcp://127.0.0.1:" + std::to_string(sim.port()) + "?unit=1&timeout=2000"});
    EXPECT_EQ(r.status, 0) << r.err;  // the model read from the module (0x45)
    EXPECT_NE(r.out.find("&model=410&timeout=2000  SeaI/O-410: 16 inputs, 16 outputs"), std::string::npos) << r.out;

    // Bad names and values: the status says which, the message what is allowed.
    r = iotool({"get", uri, "DX1"});
    EXPECT_EQ(r.status, 3);
    EXPECT_NE(r.err.find("its lines are DI0..DI15, DO0..DO15"), std::string::npos) << r.err;
    r = iotool({"set", uri, "DI1=1"});
    EXPECT_EQ(r.status, 2);
    r = iotool({"port", uri, "DO", "0x10000"});
    EXPECT_EQ(r.status, 2);
    r = iotool({"set", uri, "DO1=1", "--hold"});
    EXPECT_EQ(r.status, 2);
    r = iotool({"get", "modbus-tcp://127.0.0.1:1?unit=1&model=999", "DI0"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("known models: 410"), std::string::npos) << r.err;
    EXPECT_EQ(sim.cmd("do 1"), "do 0x3");  // nothing refused reached the module

    // monitor: the first change after the first poll, once.
    const unsigned before = sim.requests(1);
    io::test::tool_process mon({IOTOOL_PATH, "monitor", uri, "DI4", "--count", "1", "--poll", "5", "--json"});
    const auto ready = mon.read_line(std::chrono::duration_cast<std::chrono::milliseconds>(deadline));
    ASSERT_TRUE(ready.has_value());
    EXPECT_NE(ready->find("\"event\":\"ready\""), std::string::npos) << *ready;
    const auto polled = std::chrono::steady_clock::now() + deadline;
    while (sim.requests(1) <= before + 1 && std::chrono::steady_clock::now() < polled) {
    }
    EXPECT_EQ(sim.cmd("di 1 5 1"), "ok");  // not watched
    EXPECT_EQ(sim.cmd("di 1 4 1"), "ok");
    const auto edge = mon.read_line(std::chrono::duration_cast<std::chrono::milliseconds>(deadline));
    ASSERT_TRUE(edge.has_value());
    EXPECT_NE(edge->find("\"line\":\"DI4\",\"offset\":4,\"edge\":\"rising\""), std::string::npos) << *edge;
    const auto end = mon.wait();
    EXPECT_EQ(end.status, 0) << end.err;
}

TEST(ModbusIotool, ScanListsTheUnits) {
    simulator sim({"--tcp", "3:410", "9:430"});
    const auto bus = "modbus-tcp://127.0.0.1:" + std::to_string(sim.port()) + "?timeout=300";
    auto r = io::test::run_tool({IOTOOL_PATH, "modbus", "scan", bus, "--first", "2", "--last", "9"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "3\n9\n");
    r = io::test::run_tool({IOTOOL_PATH, "modbus", "scan", bus, "--first", "3", "--last", "3", "--json"});
    EXPECT_EQ(r.out, "{\"bus\":\"" + bus + "\",\"units\":[3]}\n");
    r = io::test::run_tool({IOTOOL_PATH, "modbus", "scan", bus, "--last", "300"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("allowed a range within 1 to 247"), std::string::npos) << r.err;
    r = io::test::run_tool({IOTOOL_PATH, "modbus", "probe", bus});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("allowed: scan"), std::string::npos) << r.err;
}

// A USB adapter unplugged and plugged in again: the serial device goes away
// (the pty pair ends and its links go) and comes back at the same path.
TEST(ModbusRtuPort, APortThatGoesAwayIsOpenedAgainWhenItComesBack) {
    temp_dir dir;
    auto ptys = std::make_unique<pty_pair>(dir.path());
    auto sim = std::make_unique<simulator>(std::vector<std::string>{"--rtu", ptys->b(), "1:410"});
    io::modbus_module m("modbus-rtu:" + ptys->a() + "?unit=1&model=410&timeout=500&retries=0");
    io::event_loop loop;
    collector c(loop, m);
    m.start_polling(5ms);
    wait_polls(loop, *sim, 1, 1);

    ptys.reset();  // unplugged: the tty hangs up and its node goes
    sim.reset();
    ASSERT_TRUE(run_until(loop, [&] { return !c.events.empty(); }));
    ASSERT_EQ(c.events.size(), 1U);
    EXPECT_EQ(c.events[0].what, kind::gone);
    EXPECT_EQ(c.events[0].error, std::errc::no_such_device) << c.events[0].error.message();
    EXPECT_TRUE(io::is_device_removed(c.events[0].error));
    EXPECT_FALSE(m.present());
    std::error_code ec;
    (void)m.get(0, ec);  // while it is away, opening it again fails
    EXPECT_EQ(ec, std::errc::no_such_file_or_directory) << ec.message();

    ptys = std::make_unique<pty_pair>(dir.path());  // plugged in again
    sim = std::make_unique<simulator>(std::vector<std::string>{"--rtu", ptys->b(), "1:410"});
    EXPECT_EQ(sim->cmd("di 1 6 1"), "ok");
    ASSERT_TRUE(run_until(loop, [&] { return c.events.size() >= 3; }));
    EXPECT_EQ(c.events[1].what, kind::back);
    EXPECT_EQ(c.events[2].what, kind::edge);
    EXPECT_EQ(c.events[2].line, 6U);
    EXPECT_EQ(c.events[2].change, io::edge::rising);
    EXPECT_TRUE(m.present());
    m.write_port("DO", 0x5);
    EXPECT_EQ(sim->cmd("do 1"), "do 0x5");
}

// libio's configuration directory for the tools a test runs
// (LIBIO_CONFIG_DIR, inherited by the children).
class config_dir {
public:
    config_dir() {
        std::filesystem::create_directory(dir_.path() + "/modbus.d");
        ::setenv("LIBIO_CONFIG_DIR", dir_.path().c_str(), 1);
    }
    ~config_dir() { ::unsetenv("LIBIO_CONFIG_DIR"); }
    config_dir(const config_dir&) = delete;
    config_dir& operator=(const config_dir&) = delete;
    std::string file(const std::string& name) const { return dir_.path() + "/modbus.d/" + name; }
    void write(const std::string& name, const std::string& text) const { std::ofstream{file(name)} << text; }

private:
    temp_dir dir_;
};

io::test::tool_result iotool(std::vector<std::string> args) {
    args.insert(args.begin(), IOTOOL_PATH);
    return io::test::run_tool(args);
}

// The line of text that contains `key`, or "".
std::string line_with(const std::string& text, const std::string& key) {
    const auto at = text.find(key);
    if (at == std::string::npos)
        return {};
    const auto nl = text.rfind('\n', at);
    const auto begin = nl == std::string::npos ? 0 : nl + 1;
    return text.substr(begin, text.find('\n', at) - begin);
}

TEST(ModbusIotool, ListShowsConfiguredModulesAndNamesWork) {
    simulator sim({"--tcp", "1:410", "2:430"});
    const auto base = "modbus-tcp://127.0.0.1:" + std::to_string(sim.port());
    config_dir config;
    config.write("site.conf", "# rack 3\n"
                              "[rack-a]\n"
                              "uri = " + base + "?unit=1&timeout=2000\n"
                              "poll = 20ms\n"
                              "[rack-b]\n"
                              "uri = " + base + "?unit=2&timeout=2000\n"
                              "model = 430\n"
                              "[ghost]\n"
                              "uri = " + base + "?unit=9&timeout=100&retries=0\n");
    auto r = iotool({"list"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("MODULE  MODEL      STATE          LINES   POLL  LOCATION\n"), std::string::npos) << r.out;
    EXPECT_NE(line_with(r.out, "rack-a  ").find("rack-a  seaio-410  answering         32   20ms  " + base +
                                                "?unit=1&model=410&timeout=2000"),
              std::string::npos)
        << r.out;  // the model read from the module (0x45)
    EXPECT_NE(line_with(r.out, "rack-b  ").find("seaio-430  answering"), std::string::npos) << r.out;
    EXPECT_NE(line_with(r.out, "ghost   ").find("ghost   ?          not answering      -  100ms"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("ghost: identify unit 9 on " + base + "?timeout=100&retries=0 (Get Config, function 0x45): "
                         "Connection timed out\n"),
              std::string::npos)
        << r.out;
    r = iotool({"list", "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("\"modules\":[{\"name\":\"rack-a\",\"model\":\"seaio-410\",\"vendor\":\"Sealevel\",\"location\":\"" +
                         base + "?unit=1&model=410&timeout=2000\",\"label\":\"rack-a\",\"driver\":\"modbus\""),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("\"state\":\"answering\",\"present\":true,\"error\":null,\"poll_ms\":20,\"config\":\"" +
                         config.file("site.conf") + ":2\"}"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("\"name\":\"ghost\",\"model\":\"\""), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\"state\":\"not answering\",\"present\":false,\"error\":\"identify unit 9"), std::string::npos)
        << r.out;

    // get, set, port, info and monitor by name
    EXPECT_EQ(sim.cmd("di 1 2 1"), "ok");
    r = iotool({"get", "rack-a", "DI2", "DI3"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "DI2=1 DI3=0\n");
    r = iotool({"set", "rack-a", "DO3=1"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(sim.cmd("do 1"), "do 0x8");
    EXPECT_EQ(sim.cmd("di 2 31 1"), "ok");
    r = iotool({"port", "rack-b", "DI", "--json"});
    EXPECT_EQ(r.out, "{\"card\":\"rack-b\",\"port\":\"DI\",\"width\":32,\"value\":2147483648}\n") << r.err;
    r = iotool({"info", "rack-a"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out.rfind("rack-a  SeaI/O-410: 16 inputs, 16 outputs\n  location " + base +
                              "?unit=1&model=410&timeout=2000\n  unit 1, answering\n",
                          0),
              0U)
        << r.out;
    io::test::tool_process mon({IOTOOL_PATH, "monitor", "rack-a", "--count", "0", "--json"});
    const auto ready = mon.read_line(std::chrono::duration_cast<std::chrono::milliseconds>(deadline));
    ASSERT_TRUE(ready.has_value());
    EXPECT_NE(ready->find("\"card\":\"rack-a\",\"edges\":\"both\",\"poll_ms\":20,"), std::string::npos) << *ready;
    EXPECT_EQ(mon.wait().status, 0);
    r = iotool({"get", "rack-c", "DI0"});
    EXPECT_EQ(r.status, 3);
    EXPECT_NE(r.err.find("no card 'rack-c'"), std::string::npos) << r.err;
}

TEST(ModbusIotool, BadConfigurationSaysWhereAndWhat) {
    config_dir config;
    config.write("10-site.conf", "[a]\nuri = modbus-tcp://127.0.0.1:1?unit=1\nspeed = 9600\n");
    auto r = iotool({"list"});
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.err, "iotool: " + config.file("10-site.conf") + ":3: unknown key 'speed'; allowed uri, model, poll\n");
    r = iotool({"get", "a", "DI0"});  // no card is called a: the configuration is the answer
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("10-site.conf:3: unknown key 'speed'"), std::string::npos) << r.err;
    config.write("10-site.conf", "[a]\nuri = modbus-tcp://127.0.0.1:1?unit=1\nmodel = 499\n");
    r = iotool({"watch", "--count", "0"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("10-site.conf:3: unknown modbus model '499'; known models: 410, 420, 430, 440, 450, 470, 520, or auto"),
              std::string::npos)
        << r.err;
}

// The next line of a tool's output, failing the test when none comes.
std::string next_line(io::test::tool_process& p) {
    const auto l = p.read_line(std::chrono::duration_cast<std::chrono::milliseconds>(deadline));
    if (!l)
        throw std::runtime_error("no line from the tool");
    return *l;
}

TEST(ModbusIotool, WatchReportsModulesThatStopAnsweringAndComeBack) {
    simulator sim({"--tcp", "1:410", "5:430"});
    const auto base = "modbus-tcp://127.0.0.1:" + std::to_string(sim.port());
    config_dir config;
    config.write("site.conf", "[rack-a]\nuri = " + base + "?unit=1&timeout=300&retries=0\npoll = 10ms\n"
                              "[late]\nuri = " + base + "?unit=5&model=430&timeout=300&retries=0\npoll = 10ms\n");
    EXPECT_EQ(sim.cmd("fault 5 silent"), "ok");
    io::test::tool_process w({IOTOOL_PATH, "watch", "--json", "--count", "3", "--timeout", "60"});
    auto l = next_line(w);
    EXPECT_EQ(l.rfind("{\"event\":\"present\",\"card\":{\"name\":\"rack-a\",\"model\":\"seaio-410\"", 0), 0U) << l;
    l = next_line(w);
    EXPECT_EQ(l.rfind("{\"event\":\"absent\",\"card\":{\"name\":\"late\",\"model\":\"seaio-430\"", 0), 0U) << l;
    EXPECT_NE(l.find("\"error\":\"Connection timed out\"}"), std::string::npos) << l;
    EXPECT_EQ(next_line(w), "{\"event\":\"ready\"}");

    EXPECT_EQ(sim.cmd("fault 1 silent"), "ok");
    l = next_line(w);
    EXPECT_EQ(l.rfind("{\"event\":\"removed\",\"card\":{\"name\":\"rack-a\"", 0), 0U) << l;
    EXPECT_NE(l.find("\"error\":\"Connection timed out\"}"), std::string::npos) << l;
    EXPECT_EQ(sim.cmd("fault 1 none"), "ok");
    l = next_line(w);
    EXPECT_EQ(l.rfind("{\"event\":\"added\",\"card\":{\"name\":\"rack-a\"", 0), 0U) << l;
    EXPECT_EQ(l.find("\"error\""), std::string::npos) << l;
    EXPECT_EQ(sim.cmd("fault 5 none"), "ok");  // asked again within a second
    l = next_line(w);
    EXPECT_EQ(l.rfind("{\"event\":\"added\",\"card\":{\"name\":\"late\"", 0), 0U) << l;
    const auto end = w.wait();
    EXPECT_EQ(end.status, 0) << end.err;
}

// An RTU module configured on a serial port whose adapter is unplugged and
// plugged in again (the pty pair ends and is made again at the same paths).
TEST(ModbusIotool, WatchReportsAnRtuPortThatGoesAndComesBack) {
    temp_dir dir;
    auto ptys = std::make_unique<pty_pair>(dir.path());
    auto sim = std::make_unique<simulator>(std::vector<std::string>{"--rtu", ptys->b(), "1:430"});
    config_dir config;
    config.write("bus.conf", "[field]\nuri = modbus-rtu:" + ptys->a() +
                                 "?baud=19200&unit=1&timeout=500&retries=0\npoll = 10ms\n");
    auto r = iotool({"list"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(line_with(r.out, "field  ").find("field   seaio-430  answering"), std::string::npos) << r.out;

    io::test::tool_process w({IOTOOL_PATH, "watch", "--count", "2", "--timeout", "60"});
    auto l = next_line(w);
    EXPECT_EQ(l.rfind("present   field  seaio-430  modbus-rtu:" + ptys->a() + "?baud=19200&unit=1&model=430", 0), 0U)
        << l;
    const auto polls = sim->requests(1);
    const auto polled = std::chrono::steady_clock::now() + deadline;
    while (sim->requests(1) < polls + 2 && std::chrono::steady_clock::now() < polled) {  // it polls
    }
    ptys.reset();
    sim.reset();
    l = next_line(w);
    EXPECT_EQ(l.rfind("removed   field  seaio-430  modbus-rtu:", 0), 0U) << l;
    EXPECT_NE(l.find("  (No such device)"), std::string::npos) << l;
    ptys = std::make_unique<pty_pair>(dir.path());
    sim = std::make_unique<simulator>(std::vector<std::string>{"--rtu", ptys->b(), "1:430"});
    l = next_line(w);
    EXPECT_EQ(l.rfind("added     field  seaio-430  modbus-rtu:", 0), 0U) << l;
    const auto end = w.wait();
    EXPECT_EQ(end.status, 0) << end.err;
}

TEST(ModbusTcp, ScanReportsItsProgressBeforeEachUnit) {
    simulator sim({"--tcp", "3:410"});
    io::modbus_bus bus("modbus-tcp://127.0.0.1:" + std::to_string(sim.port()) + "?timeout=300");
    std::vector<std::pair<unsigned, std::size_t>> seen;
    const auto units = bus.scan(2, 4, [&](unsigned unit, std::size_t found) {
        seen.emplace_back(unit, found);
        EXPECT_EQ(sim.requests(3), unit > 3 ? 1U : 0U);  // called before the unit is asked
    });
    EXPECT_EQ(units, std::vector<unsigned>{3});
    EXPECT_EQ(seen, (std::vector<std::pair<unsigned, std::size_t>>{{2, 0}, {3, 0}, {4, 1}}));
    EXPECT_THROW((void)bus.scan(4, 2, [](unsigned, std::size_t) {}), io::invalid_argument);
}

// What iotool writes to its stderr when that is a terminal (a pty), its
// stdout thrown away.
std::string stderr_on_a_terminal(std::vector<std::string> argv) {
    const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0)
        throw std::runtime_error("posix_openpt");
    const int slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0)
        throw std::runtime_error("open the pty's terminal");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, slave, 2);
    std::vector<char*> args;
    for (auto& a : argv)
        args.push_back(a.data());
    args.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(slave);
    std::string out;
    for (;;) {  // until the terminal's last holder, the tool, has ended (EIO)
        pollfd p{master, POLLIN, 0};
        if (rc != 0 || ::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(deadline).count())) <= 0)
            break;
        char b[512];
        const auto n = ::read(master, b, sizeof b);
        if (n <= 0)
            break;
        out.append(b, static_cast<std::size_t>(n));
    }
    int status = 0;
    if (rc == 0)
        ::waitpid(pid, &status, 0);
    ::close(master);
    return out;
}

TEST(ModbusIotool, ScanShowsProgressOnATerminal) {
    simulator sim({"--tcp", "3:410"});
    const auto bus = "modbus-tcp://127.0.0.1:" + std::to_string(sim.port()) + "?timeout=300";
    const auto err = stderr_on_a_terminal({IOTOOL_PATH, "modbus", "scan", bus, "--first", "2", "--last", "4"});
    EXPECT_EQ(err, "\r[..............................] 0%  unit 2, 0 found\x1b[K"
                   "\r[##########....................] 33%  unit 3, 0 found\x1b[K"
                   "\r[####################..........] 66%  unit 4, 1 found\x1b[K"
                   "\r\x1b[K");
    const auto r = iotool({"modbus", "scan", bus, "--first", "2", "--last", "4"});  // not a terminal: no progress
    EXPECT_EQ(r.out, "3\n");
    EXPECT_EQ(r.err, "");
}

}  // namespace
