// SPDX-License-Identifier: MIT
// iotool: the diagnostic command-line tool of libio. See iotool(1).
#include "iotool.hpp"

#include "common/exit_code.hpp"

#include <io/version.hpp>

#include <cstring>
#include <iostream>

namespace {

using namespace io::tools;
using namespace io::tools::iotool;

struct command {
    const char* name;
    const char* summary;
    int (*run)(const args&);
};

constexpr command commands[] = {
    {"list", "every card and configured Modbus module: model, location, lines, state", run_list},
    {"info", "a card's lines (direction, use, consumer) and serial ports", run_info},
    {"get", "read input lines", run_get},
    {"set", "drive output lines (--hold keeps them until interrupted)", run_set},
    {"port", "read or write a whole port as an integer", run_port},
    {"monitor", "edge events with kernel timestamps (text or JSON lines)", run_monitor},
    {"watch", "cards and Modbus modules arriving and leaving", run_watch},
    {"serial", "serial ports: show, set, send, recv, term, loopback", run_serial},
    {"selftest", "loopback test: walk ones and zeros through every output", run_selftest},
    {"latency", "output-to-input loopback latency: percentiles and histogram", run_latency},
    {"modbus", "Modbus buses: scan for the units that answer", run_modbus},
};

void usage(std::ostream& out) {
    out << "Usage: iotool COMMAND [ARGS...]\n"
           "       iotool COMMAND --help     (options and examples of a command)\n"
           "       iotool --version\n\n"
           "Diagnoses industrial digital I/O and serial cards through libio.\n\n"
           "Commands:\n";
    for (const auto& c : commands)
        out << "  " << c.name << std::string(10 - std::strlen(c.name), ' ') << c.summary << '\n';
    out << "\nCARD is a label, bus location (pci:0000:03:00.0, sim:0), kernel name (iocard0),\n"
           "gpiochip (/dev/gpiochip3), MODEL#INDEX (dio120#0) or a MODEL found once; for get,\n"
           "set, port, info and monitor also a Modbus module's URI\n"
           "(modbus-tcp://HOST[:PORT]?unit=N&model=M, modbus-rtu:DEVICE?baud=B&unit=N&model=M)\n"
           "or its name in /etc/libio/modbus.d/*.conf ($LIBIO_CONFIG_DIR/modbus.d), which list\n"
           "and watch show.\n"
           "LINE is a line name (A0, IN3) or offset.\n\n"
           "Exit status:\n"
           "  0  ok\n"
           "  1  failure found (selftest line failed, no edge or data before the timeout)\n"
           "  2  usage: bad command line or value\n"
           "  3  not found: no such card, line, port or serial port\n"
           "  4  permission denied (see iotool(1), PERMISSIONS)\n"
           "  5  I/O or device error: busy, failed, or removed\n";
}

}  // namespace

int main(int argc, char** argv) {
    std::ios::sync_with_stdio(true);
    const args all(argv + 1, argv + argc);
    try {
        if (all.empty()) {
            usage(std::cerr);
            return exit_usage;
        }
        const auto& name = all.front();
        if (name == "-h" || name == "--help" || name == "help") {
            usage(std::cout);
            return exit_ok;
        }
        if (name == "--version" || name == "-V") {
            std::cout << "iotool " << io::version() << '\n';
            return exit_ok;
        }
        for (const auto& c : commands)
            if (name == c.name)
                return c.run(args(all.begin() + 1, all.end()));
        std::string names;
        for (const auto& c : commands)
            names += std::string(names.empty() ? "" : ", ") + c.name;
        usage_failure("unknown command '" + name + "'; commands: " + names + ". See 'iotool --help'.");
    } catch (...) {
        const auto [code, message] = classify(std::current_exception());
        std::cout.flush();
        std::cerr << "iotool: " << message << '\n';
        return code;
    }
}
