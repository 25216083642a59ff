// SPDX-License-Identifier: MIT
// iogate: the cards on an MQTT broker as a Sparkplug B edge node. The I/O
// side runs on io::event_loop in this thread; MQTT runs in the transport's
// own thread (mqtt_transport).
#include <io/card_monitor.hpp>
#include <io/error.hpp>
#include <io/event_loop.hpp>
#include <io/gate/card_device.hpp>
#include <io/gate/config.hpp>
#include <io/gate/gateway.hpp>
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
    "Publishes the configured cards' digital lines to an MQTT broker as a\n"
    "Sparkplug B edge node (TLS with a client certificate; listens on nothing).\n"
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

// The configured cards that are present, as devices of the node.
class cards final {
public:
    cards(const gate::gate_config& cfg, io::event_loop& loop, gate::node& n) : cfg_{cfg}, loop_{loop}, node_{n} {}

    // Publishes `card` if an entry of the configuration names it among all
    // the cards present (a model name matches only while it is unique).
    void attach(const io::card_info& card, const std::vector<io::card_info>& present) {
        for (const auto& e : cfg_.cards) {
            try {
                if (io::find_card(e.card, present).syspath != card.syspath)
                    continue;
            } catch (const io::invalid_argument& ex) {
                if (dynamic_cast<const io::ambiguous_card*>(&ex) != nullptr)
                    log_line("[[card]] card = '" + e.card + "': " + ex.what());
                continue;
            }
            const std::string id = e.device_id.empty() ? card.label : e.device_id;
            if (devices_.count(card.syspath) != 0)
                return;
            try {
                auto d = std::make_unique<gate::card_device>(
                    card, e.options, loop_,
                    [this, id](std::vector<gate::metric> m) { node_.device_data(id, std::move(m)); },
                    [this, id, sys = card.syspath](std::error_code ec) {
                        log_line("card " + id + ": " + ec.message() + "; device dead until it returns");
                        // Not removed from inside its own callback: later in the loop.
                        pending_.push_back(sys);
                        reap_ = loop_.call_after(0ms, [this] { reap(); });
                    });
                for (const auto& l : d->held_elsewhere())
                    log_line("card " + id + ": line " + l + " is held by another process; published as BAD");
                node_.add_device(id, *d);
                devices_.emplace(card.syspath, entry{id, std::move(d)});
                log_line("card " + card.label + " (" + card.location + ") published as device " + id);
            } catch (const std::exception& ex) {
                log_line("card " + card.label + ": " + ex.what());
            }
            return;
        }
    }

    void detach(const io::card_info& card) { drop(card.syspath); }

private:
    struct entry {
        std::string id;
        std::unique_ptr<gate::card_device> dev;
    };
    void drop(const std::string& syspath) {
        const auto it = devices_.find(syspath);
        if (it == devices_.end())
            return;
        node_.remove_device(it->second.id);
        devices_.erase(it);
    }
    void reap() {
        for (const auto& s : pending_)
            drop(s);
        pending_.clear();
    }
    const gate::gate_config& cfg_;
    io::event_loop& loop_;
    gate::node& node_;
    std::map<std::string, entry> devices_;
    std::vector<std::string> pending_;
    io::registration reap_;
};

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
    gate::gateway gw{cfg, loop};
    gate::node& node = gw.edge_node();
    node.log = log_line;

    std::optional<io::card_monitor> monitor;
    io::registration card_watch;
    cards attached{cfg, loop, node};
    if (!cfg.cards.empty()) {
        monitor.emplace();
        for (const auto& c : monitor->cards())
            attached.attach(c, monitor->cards());
        for (const auto& e : cfg.cards) {
            try {
                (void)io::find_card(e.card, monitor->cards());
            } catch (const io::ambiguous_card&) {
                // said by attach()
            } catch (const io::invalid_argument&) {
                log_line("[[card]] card = '" + e.card + "' is not present; published when it appears");
            }
        }
        card_watch = io::on_card_events(loop, *monitor, [&](std::span<const io::card_event> ev, std::error_code ec) {
            if (ec) {
                log_line("card monitor: " + ec.message());
                return;
            }
            for (const auto& e : ev) {
                if (e.change == io::card_event::kind::added)
                    attached.attach(e.card, monitor->cards());
                else
                    attached.detach(e.card);
            }
        });
    }

    bool stopping = false;
    auto shutdown_deadline = io::event_loop::clock::time_point::max();
    auto signals = loop.watch(sfd, io::ready::in, [&](io::readiness) {
        signalfd_siginfo si{};
        while (::read(sfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
            if (si.ssi_signo == SIGHUP) {
                log_line("SIGHUP: publishing births again");
                node.rebirth();
                continue;
            }
            if (!stopping) {
                log_line(std::string{"stopping ("} + ::strsignal(static_cast<int>(si.ssi_signo)) + ")");
                notify("STOPPING=1");
                stopping = true;
                shutdown_deadline = io::event_loop::clock::now() + 5s;
                gw.stop();
            }
        }
    });
    std::optional<io::registration> watchdog;
    if (const char* usec = std::getenv("WATCHDOG_USEC"); usec != nullptr && std::atoll(usec) > 0) {
        const auto period = std::chrono::microseconds{std::atoll(usec) / 2};
        watchdog = loop.call_every(period, [] { notify("WATCHDOG=1"); });
    }
    auto check = loop.call_every(100ms, [&] {
        if (stopping && (gw.stopped() ||
                         io::event_loop::clock::now() >= shutdown_deadline))
            loop.stop();
    });

    log_line("edge node " + cfg.node.group_id + "/" + cfg.node.edge_node_id + ", servers:" + [&] {
        std::string s;
        for (const auto& sv : cfg.mqtt.servers)
            s += " " + sv.uri();
        return s;
    }());
    gw.start();
    notify("READY=1");
    loop.run();
    ::close(sfd);
    return gw.stopped() ? exit_code::exit_ok : exit_code::exit_failure;
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
