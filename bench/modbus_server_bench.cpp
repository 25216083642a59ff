// SPDX-License-Identifier: MIT
// iogate's Modbus/TCP server on loopback: a read of 16 discrete inputs
// (function 02) through io::gate::modbus_server against the same read from
// a minimal libmodbus server (modbus_receive/modbus_reply on a mapping) in
// the same run. Both serve lines held in memory, each in its own thread; the
// client is libmodbus for both. Heap allocations per read are the whole
// process's (client and server).
#include "bench_common.hpp"
#include "modbus_client.hpp"

#include <io/event_loop.hpp>
#include <io/gate/modbus_server.hpp>

#include <modbus.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace gate = io::gate;

namespace {

// 16 input lines in memory, A0..A15, alternate levels.
struct memory_lines final : gate::line_access {
    std::uint64_t levels = 0x5555;
    std::uint64_t get(std::span<const unsigned> lines, std::error_code&) override {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < lines.size(); ++i)
            v |= (levels >> lines[i] & 1U) << i;
        return v;
    }
    void set(std::span<const unsigned>, std::uint64_t, std::error_code& ec) override {
        ec = std::make_error_code(std::errc::operation_not_permitted);
    }
    std::uint64_t edges_seen() const override { return 0; }
    std::uint64_t lost_events() const override { return 0; }
};

// iogate's server in its own thread and event loop.
class gate_server {
public:
    gate_server() {
        std::vector<gate::unit_line> lines;
        gate::unit_port port{"A", {}};
        for (unsigned i = 0; i < 16; ++i) {
            lines.push_back({i, "A" + std::to_string(i), false, false});
            port.offsets.push_back(i);
        }
        map_ = std::make_unique<gate::register_map>(std::move(lines), std::vector<gate::unit_port>{port}, access_);
        gate::modbus_server_options o;
        o.port = 0;
        server_ = std::make_unique<gate::modbus_server>(o, loop_);
        server_->set_unit(1, map_.get());
        thread_ = std::thread{[this] { loop_.run(); }};
    }
    ~gate_server() {
        loop_.stop();
        thread_.join();
    }
    gate_server(const gate_server&) = delete;
    gate_server& operator=(const gate_server&) = delete;
    int port() const { return server_->port(); }

private:
    memory_lines access_;
    io::event_loop loop_;
    std::unique_ptr<gate::register_map> map_;
    std::unique_ptr<gate::modbus_server> server_;
    std::thread thread_;
};

// The minimal libmodbus server: one client at a time, blocking, as
// libmodbus's own unit-test server does it.
class libmodbus_server {
public:
    libmodbus_server() {
        ctx_ = modbus_new_tcp("127.0.0.1", 0);
        mapping_ = modbus_mapping_new(0, 16, 0, 0);
        for (int i = 0; i < 16; ++i)
            mapping_->tab_input_bits[i] = (0x5555 >> i) & 1;
        // Port 0: the kernel picks a free one; getsockname() tells which.
        listen_ = modbus_tcp_listen(ctx_, 1);
        sockaddr_in a{};
        socklen_t len = sizeof a;
        if (listen_ < 0 || ::getsockname(listen_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            return;
        port_ = ntohs(a.sin_port);
        thread_ = std::thread{[this] { serve(); }};
    }
    ~libmodbus_server() {
        stopping_ = true;
        if (listen_ >= 0)
            ::shutdown(listen_, SHUT_RDWR);
        if (thread_.joinable())
            thread_.join();
        if (listen_ >= 0)
            ::close(listen_);
        modbus_mapping_free(mapping_);
        modbus_free(ctx_);
    }
    libmodbus_server(const libmodbus_server&) = delete;
    libmodbus_server& operator=(const libmodbus_server&) = delete;
    int port() const { return port_; }

private:
    void serve() {
        std::uint8_t req[MODBUS_TCP_MAX_ADU_LENGTH];
        while (!stopping_) {
            int fd = listen_;
            if (modbus_tcp_accept(ctx_, &fd) < 0)
                return;
            for (;;) {
                const int n = modbus_receive(ctx_, req);
                if (n < 0)
                    break;
                if (n > 0)
                    modbus_reply(ctx_, req, n, mapping_);
            }
            modbus_close(ctx_);
        }
    }

    modbus_t* ctx_ = nullptr;
    modbus_mapping_t* mapping_ = nullptr;
    int listen_ = -1;
    int port_ = 0;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

std::unique_ptr<gate_server> gate_srv;
std::unique_ptr<libmodbus_server> libmodbus_srv;

void read_di16(benchmark::State& state, int port) {
    if (port == 0) {
        state.SkipWithError("the server did not start");
        return;
    }
    const auto ctx = bench::raw_modbus_client(state, modbus_new_tcp("127.0.0.1", port), "libmodbus could not connect");
    if (!ctx)
        return;
    std::uint8_t bits[16];
    bench::time_each(
        state,
        [&] {
            if (modbus_read_input_bits(ctx.get(), 0, 16, bits) != 16)
                return false;
            return bits[0] == 1 && bits[1] == 0 && bits[15] == 0;
        },
        "read of 16 discrete inputs failed or read wrong levels");
}

void read_libmodbus(benchmark::State& state) {
    read_di16(state, libmodbus_srv->port());
}

void read_iogate(benchmark::State& state) {
    read_di16(state, gate_srv->port());
}

}  // namespace

int main(int argc, char** argv) {
    gate_srv = std::make_unique<gate_server>();
    libmodbus_srv = std::make_unique<libmodbus_server>();
    bench::add("modbus_server_read_di16/libmodbus_server", read_libmodbus)->UseManualTime();
    bench::add("modbus_server_read_di16/iogate", read_iogate)->UseManualTime();
    const int rc = bench::run_main(argc, argv);
    libmodbus_srv.reset();
    gate_srv.reset();
    return rc;
}
