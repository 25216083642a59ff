// SPDX-License-Identifier: MIT
// iogate: the cards on an MQTT broker as a Sparkplug B edge node. The I/O
// side runs on io::event_loop in this thread; MQTT runs in the transport's
// own thread (mqtt_transport).
#include <io/card_monitor.hpp>
#include <io/error.hpp>
#include <io/event_loop.hpp>
#include <io/gate/card_set.hpp>
#include <io/gate/config.hpp>
#include <io/gate/gateway.hpp>
#include <io/gate/modbus_device.hpp>
#include <io/gate/modbus_units.hpp>
#include <io/gate/serial_device.hpp>
#include <io/version.hpp>

#include "common/exit_code.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <system_error>
#include <unistd.h>

using namespace std::chrono_literals;
namespace gate = io::gate;
using io::tools::exit_code;

namespace {

constexpr const char* usage_text =
    "usage: iogate [--config FILE] [--check-config]\n"
    "       iogate --version | --help\n"
    "\n"
    "Publishes the configured cards' digital lines and remote Modbus modules to\n"
    "an MQTT broker as a Sparkplug B edge node (TLS with a client certificate;\n"
    "listens on nothing),\n"
    "and, when [modbus_server] is configured, serves cards over Modbus/TCP.\n"
    "\n"
    "  --config FILE    the configuration (default /etc/iogate/iogate.toml)\n"
    "  --check-config   read and check the configuration and the TLS files, then exit\n";

void log_line(const std::string& text) {
    std::cerr << "iogate: " << text << std::endl;
}

// systemd's notification protocol (sd_notify(3)), without libsystemd.
void notify(const std::string& state) {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (path == nullptr || (path[0] != '/' && path[0] != '@') || std::strlen(path) >= sizeof(sockaddr_un::sun_path))
        return;
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    if (addr.sun_path[0] == '@')
        addr.sun_path[0] = '\0';
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + std::strlen(path));
    [[maybe_unused]] const auto n =
        ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr), len);
    ::close(fd);
}

int run(const gate::gate_config& cfg) {
    // Signals are taken by a signalfd; blocked before any thread starts.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    const int sfd = ::signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        throw std::system_error(errno, std::generic_category(), "signalfd");

    io::event_loop loop;
    // Without [mqtt] (a Modbus-only configuration) there is no edge node.
    std::optional<gate::gateway> gw;
    std::optional<gate::card_set> cards;
    if (!cfg.mqtt.servers.empty()) {
        gw.emplace(cfg, loop);
        gw->edge_node().log = log_line;
        cards.emplace(cfg.cards, gw->edge_node(), loop);
        cards->log = log_line;
    }
    std::optional<gate::modbus_device_set> modules;
    if (gw && !cfg.modbus_modules.empty()) {
        modules.emplace(gate::resolve_modbus_modules(cfg, io::config_dir()), gw->edge_node(), loop);
        modules->log = log_line;
        modules->start();
    }
    std::optional<gate::serial_device_set> serial_ports;
    if (gw && !cfg.serial_ports.empty()) {
        serial_ports.emplace(cfg.serial_ports, gw->edge_node(), loop);
        serial_ports->log = log_line;
        serial_ports->start();
    }
    std::optional<gate::modbus_units> modbus;
    if (cfg.modbus.enabled) {
        modbus.emplace(cfg.modbus, loop);
        modbus->set_log(log_line);
        log_line("Modbus/TCP server on " + cfg.modbus.options.listen + " port " +
                 std::to_string(modbus->server().port()) + " (no authentication: clients that reach it may read " +
                 "the served cards and write their writable lines)");
    }

    std::optional<io::card_monitor> monitor;
    io::registration card_watch;
    if (!cfg.cards.empty() || modbus) {
        monitor.emplace();
        for (const auto& c : monitor->cards()) {
            if (cards)
                cards->attach(c, monitor->cards());
            if (modbus)
                modbus->attach(c, monitor->cards());
        }
        if (cards)
            for (const auto& key : cards->absent(monitor->cards()))
                log_line("[[card]] card = '" + key + "' is not present; published when it appears");
        if (modbus)
            for (const auto& key : modbus->absent(monitor->cards()))
                log_line("[[modbus_server.unit]] card = '" + key + "' is not present; served when it appears");
        card_watch = io::on_card_events(loop, *monitor, [&](std::span<const io::card_event> ev, std::error_code ec) {
            if (ec) {
                log_line("card monitor: " + ec.message());
                return;
            }
            for (const auto& e : ev) {
                if (e.change == io::card_event::kind::added) {
                    if (cards)
                        cards->attach(e.card, monitor->cards());
                    if (modbus)
                        modbus->attach(e.card, monitor->cards());
                } else {
                    if (cards)
                        cards->detach(e.card);
                    if (modbus)
                        modbus->detach(e.card);
                }
            }
        });
    }

    bool stopping = false;
    auto shutdown_deadline = io::event_loop::clock::time_point::max();
    auto signals = loop.watch(sfd, io::ready::in, [&](io::readiness) {
        signalfd_siginfo si{};
        while (::read(sfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
            if (si.ssi_signo == SIGHUP) {
                if (gw) {
                    log_line("SIGHUP: publishing births again");
                    gw->edge_node().rebirth();
                }
                continue;
            }
            if (!stopping) {
                log_line(std::string{"stopping ("} + ::strsignal(static_cast<int>(si.ssi_signo)) + ")");
                notify("STOPPING=1");
                stopping = true;
                shutdown_deadline = io::event_loop::clock::now() + 5s;
                if (gw)
                    gw->stop();
            }
        }
    });
    std::optional<io::registration> watchdog;
    if (const char* usec = std::getenv("WATCHDOG_USEC"); usec != nullptr && std::atoll(usec) > 0) {
        const auto period = std::chrono::microseconds{std::atoll(usec) / 2};
        watchdog = loop.call_every(period, [] { notify("WATCHDOG=1"); });
    }
    auto check = loop.call_every(100ms, [&] {
        if (stopping && (!gw || gw->stopped() ||
                         io::event_loop::clock::now() >= shutdown_deadline))
            loop.stop();
    });

    if (gw) {
        log_line("edge node " + cfg.node.group_id + "/" + cfg.node.edge_node_id + ", servers:" + [&] {
            std::string s;
            for (const auto& sv : cfg.mqtt.servers)
                s += " " + sv.uri();
            return s;
        }());
        gw->start();
    }
    notify("READY=1");
    loop.run();
    ::close(sfd);
    return !gw || gw->stopped() ? exit_code::exit_ok : exit_code::exit_failure;
}

}  // namespace

int main(int argc, char** argv) {
    std::string config_path = "/etc/iogate/iogate.toml";
    bool check_only = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::cout << usage_text;
            return exit_code::exit_ok;
        }
        if (a == "--version") {
            std::cout << "iogate " << io::version() << "\n";
            return exit_code::exit_ok;
        }
        if (a == "--check-config") {
            check_only = true;
        } else if (a == "--config" && i + 1 < argc) {
            config_path = argv[++i];
        } else if (a.rfind("--config=", 0) == 0) {
            config_path = a.substr(9);
        } else {
            std::cerr << "iogate: unknown argument '" << a << "'\n" << usage_text;
            return exit_code::exit_usage;
        }
    }
    try {
        const auto cfg = gate::load_config(config_path);
        gate::check_config(cfg);
        if (check_only) {
            if (cfg.mqtt.servers.empty())
                std::cout << config_path << ": OK (Modbus/TCP server only)\n";
            else
                std::cout << config_path << ": OK (edge node " << cfg.node.group_id << "/" << cfg.node.edge_node_id
                          << ")\n";
            return exit_code::exit_ok;
        }
        return run(cfg);
    } catch (const io::invalid_argument& e) {
        std::cerr << "iogate: " << e.what() << "\n";
        return exit_code::exit_usage;
    } catch (const std::system_error& e) {
        std::cerr << "iogate: " << e.what() << "\n";
        return exit_code::exit_io;
    } catch (const std::exception& e) {
        std::cerr << "iogate: " << e.what() << "\n";
        return exit_code::exit_failure;
    }
}
