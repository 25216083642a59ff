// SPDX-License-Identifier: MIT
// iogate's Modbus/TCP server, the real daemon, on virtual cards of
// iocard.ko, against mbpoll (a client we did not write) on 127.0.0.1:
// inputs set with sim_inputs are read as discrete inputs and registers, a
// permitted write shows in sim_outputs, a write not permitted is refused
// with exception 02, and a card that goes away is answered with 0B.
#include "sim_card.hpp"
#include "tool_runner.hpp"
#include "vm_test.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

using io::test::sim_card;
using namespace std::chrono_literals;

namespace {

const std::string iogate = IOGATE_PATH;
constexpr int port = 15020;

// mbpoll once on 127.0.0.1, PDU addressing; values to write after the host.
io::test::tool_result mbpoll(std::vector<std::string> args, const std::vector<std::string>& values = {}) {
    std::vector<std::string> argv{"/usr/bin/mbpoll", "-m", "tcp", "-p", std::to_string(port), "-0", "-o", "5"};
    if (values.empty())
        argv.push_back("-1");
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("127.0.0.1");
    argv.insert(argv.end(), values.begin(), values.end());
    return io::test::run_tool(argv, {}, 30s);
}

// "[ADDR]: \tVALUE" lines of mbpoll's output.
std::map<int, std::string> values_of(const std::string& out) {
    std::map<int, std::string> v;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] != '[' || line.find("]:") == std::string::npos)
            continue;
        std::istringstream rest(line.substr(line.find("]:") + 2));
        std::string value;
        rest >> value;
        v[std::stoi(line.substr(1))] = value;
    }
    return v;
}

class iogate_modbus : public io::test::vm_test {
protected:
    void SetUp() override {
        vm_test::SetUp();
        // The guest has no network card; the server and mbpoll meet on loopback.
        ASSERT_EQ(io::test::run("ip link set lo up"), 0);
    }
};

}  // namespace

TEST_F(iogate_modbus, mbpoll_reads_inputs_and_a_permitted_write_drives_the_output) {
    sim_card cos{"cos32"};
    sim_card dio{"dio120"};
    const std::string cfg = "/tmp/iogate-modbus.toml";
    {
        std::ofstream f{cfg};
        f << "[modbus_server]\nport = " << port << "\n"
          << "[[modbus_server.unit]]\nid = 1\ncard = \"" << cos.name() << "\"\nwritable = [";
        for (int i = 0; i < 32; ++i)
            f << (i ? ", " : "") << "\"OUT" << i << "\"";
        f << "]\n[[modbus_server.unit]]\nid = 2\ncard = \"" << dio.name() << "\"\n";
    }
    io::test::tool_process gate{{"/bin/sh", "-c", "exec " + iogate + " --config " + cfg + " 2>&1"}};
    int served = 0;
    std::string seen;
    while (served < 2) {
        const auto line = gate.read_line(30s);
        ASSERT_TRUE(line) << "iogate did not serve both cards; its output:\n" << seen;
        seen += *line + "\n";
        if (line->find("served as Modbus unit") != std::string::npos)
            ++served;
    }
    EXPECT_NE(seen.find("unit 1: 32 discrete inputs, 32 coils, 12 input registers, 2 holding registers"),
              std::string::npos)
        << seen;

    cos.set_inputs("a5c3");
    auto r = mbpoll({"-a", "1", "-t", "1", "-r", "0", "-c", "16"});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    const auto di = values_of(r.out);
    for (int i = 0; i < 16; ++i)
        EXPECT_EQ(di.at(i), std::to_string((0xa5c3 >> i) & 1)) << "discrete input " << i;
    // Input register 8: port IN's low 16 lines; 0-3 count the edges seen.
    // The edges reach iogate's event loop on their own time: wait (bounded) for the count.
    std::map<int, std::string> ir;
    for (int i = 0; i < 50; ++i) {
        r = mbpoll({"-a", "1", "-t", "3", "-r", "0", "-c", "9"});
        ASSERT_EQ(r.status, 0) << r.out << r.err;
        ir = values_of(r.out);
        if (ir.at(3) == "8")
            break;
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(ir.at(8), std::to_string(0xa5c3));
    EXPECT_EQ(ir.at(3), "8") << "edges seen: the 8 lines that rose\n" << r.out;

    // A permitted write: coil 3 is OUT3 (line 32 + 3 of the card).
    r = mbpoll({"-a", "1", "-t", "0", "-r", "3"}, {"1"});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(io::test::parse_mask(cos.outputs()), 1ULL << (32 + 3));
    // Holding register 1: OUT16..OUT31.
    r = mbpoll({"-a", "1", "-t", "4", "-r", "1"}, {"32769"});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(io::test::parse_mask(cos.outputs()), (1ULL << 35) | (1ULL << 48) | (1ULL << 63));
    r = mbpoll({"-a", "1", "-t", "0", "-r", "0", "-c", "4"});
    EXPECT_EQ(values_of(r.out), (std::map<int, std::string>{{0, "0"}, {1, "0"}, {2, "0"}, {3, "1"}})) << r.out;

    // Unit 2 has no writable line: refused with exception 02, nothing driven.
    const auto before = dio.outputs();
    r = mbpoll({"-a", "2", "-t", "0", "-r", "0"}, {"1"});
    EXPECT_NE(r.status, 0);
    EXPECT_NE((r.out + r.err).find("Illegal data address"), std::string::npos) << r.out << r.err;
    EXPECT_EQ(dio.outputs(), before);
    r = mbpoll({"-a", "2", "-t", "1", "-r", "0", "-c", "24"});
    EXPECT_EQ(r.status, 0) << r.out << r.err;

    // The card goes away: its unit answers exception 0B; the other is served.
    ASSERT_EQ(dio.remove(), 0);
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
        r = mbpoll({"-a", "2", "-t", "1", "-r", "0", "-c", "1"});
        gone = (r.out + r.err).find("Target device failed to respond") != std::string::npos;
        if (!gone)
            std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(gone) << r.out << r.err;
    r = mbpoll({"-a", "1", "-t", "1", "-r", "0", "-c", "1"});
    EXPECT_EQ(r.status, 0) << r.out << r.err;

    gate.signal(SIGTERM);
    const auto end = gate.wait(30s);
    EXPECT_EQ(end.status, 0) << end.out << end.err;
}
