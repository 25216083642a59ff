// SPDX-License-Identifier: MIT
// The Modbus/TCP server. Frame and PDU layouts follow the Modbus
// Application Protocol Specification V1.1b3 (function codes 01-06, 0F, 10
// and their quantity limits, section 6) and the Modbus Messaging on TCP/IP
// Implementation Guide V1.0b (the MBAP header, section 3.1.3).
#include <io/gate/modbus_server.hpp>

#include <io/error.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <list>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace io::gate {

namespace {

constexpr std::size_t max_pdu = 253;
constexpr std::size_t mbap_size = 7;  // transaction, protocol, length, unit

unsigned be16(const std::uint8_t* p) {
    return static_cast<unsigned>(p[0]) << 8 | p[1];
}

void put16(std::uint8_t* p, unsigned v) {
    p[0] = static_cast<std::uint8_t>(v >> 8);
    p[1] = static_cast<std::uint8_t>(v);
}

}  // namespace

register_map::register_map(std::vector<unit_line> lines, const std::vector<unit_port>& ports, line_access& access)
    : access_{access} {
    std::sort(lines.begin(), lines.end(), [](const unit_line& a, const unit_line& b) { return a.offset < b.offset; });
    for (auto& l : lines) {
        if (!l.output)
            l.writable = false;
        (l.output ? coils_ : inputs_).push_back(l);
    }
    const auto find = [&](unsigned off) -> const unit_line* {
        const auto it = std::find_if(lines.begin(), lines.end(), [&](const unit_line& l) { return l.offset == off; });
        return it == lines.end() ? nullptr : &*it;
    };
    for (const auto& p : ports) {
        if (p.offsets.empty())
            continue;
        bool served = true, outputs = true;
        for (const auto off : p.offsets) {
            const auto* l = find(off);
            served = served && l != nullptr;
            outputs = outputs && l != nullptr && l->output;
        }
        if (!served)
            continue;
        for (std::size_t first = 0; first < p.offsets.size(); first += 16) {
            word w;
            w.name = first == 0 ? p.name : p.name + "[" + std::to_string(first / 16) + "]";
            w.lines.assign(p.offsets.begin() + static_cast<std::ptrdiff_t>(first),
                           p.offsets.begin() + static_cast<std::ptrdiff_t>(std::min(first + 16, p.offsets.size())));
            w.writable = std::all_of(w.lines.begin(), w.lines.end(), [&](unsigned off) {
                const auto* l = find(off);
                return l != nullptr && l->writable;
            });
            in_words_.push_back(w);
            if (outputs)
                hold_words_.push_back(std::move(w));
        }
    }
    scratch_.reserve(2000);
}

modbus_exception register_map::read_bits(const std::vector<unit_line>& table, unsigned addr, unsigned count,
                                         std::uint8_t* out) {
    if (count < 1 || count > 2000)
        return modbus_exception::illegal_data_value;
    if (addr + count > table.size())
        return modbus_exception::illegal_data_address;
    std::memset(out, 0, (count + 7) / 8);
    for (unsigned done = 0; done < count; done += 64) {
        const unsigned n = std::min(64U, count - done);
        scratch_.clear();
        for (unsigned i = 0; i < n; ++i)
            scratch_.push_back(table[addr + done + i].offset);
        std::error_code ec;
        const auto bits = access_.get(scratch_, ec);
        if (ec)
            return modbus_exception::server_device_failure;
        for (unsigned i = 0; i < n; ++i)
            if ((bits >> i & 1U) != 0)
                out[(done + i) / 8] |= static_cast<std::uint8_t>(1U << ((done + i) % 8));
    }
    return modbus_exception::none;
}

modbus_exception register_map::read_words(bool holding, unsigned addr, unsigned count, std::uint8_t* out) {
    if (count < 1 || count > 125)
        return modbus_exception::illegal_data_value;
    const auto& words = holding ? hold_words_ : in_words_;
    const std::size_t total = holding ? words.size() : counter_registers + words.size();
    if (addr + count > total)
        return modbus_exception::illegal_data_address;
    for (unsigned i = 0; i < count; ++i) {
        unsigned a = addr + i;
        unsigned v = 0;
        if (!holding && a < counter_registers) {
            const std::uint64_t c = a < 4 ? access_.edges_seen() : access_.lost_events();
            v = static_cast<unsigned>(c >> (16 * (3 - a % 4)) & 0xFFFFU);
        } else {
            if (!holding)
                a -= counter_registers;
            std::error_code ec;
            v = static_cast<unsigned>(access_.get(words[a].lines, ec));
            if (ec)
                return modbus_exception::server_device_failure;
        }
        put16(out + 2 * i, v);
    }
    return modbus_exception::none;
}

modbus_exception register_map::write_coils(unsigned addr, unsigned count, const std::uint8_t* bits) {
    if (addr + count > coils_.size()) {
        ++refused_;
        return modbus_exception::illegal_data_address;
    }
    for (unsigned i = 0; i < count; ++i)
        if (!coils_[addr + i].writable) {
            ++refused_;
            return modbus_exception::illegal_data_address;
        }
    for (unsigned done = 0; done < count; done += 64) {
        const unsigned n = std::min(64U, count - done);
        scratch_.clear();
        std::uint64_t v = 0;
        for (unsigned i = 0; i < n; ++i) {
            scratch_.push_back(coils_[addr + done + i].offset);
            if (((static_cast<unsigned>(bits[(done + i) / 8]) >> ((done + i) % 8)) & 1U) != 0)
                v |= std::uint64_t{1} << i;
        }
        std::error_code ec;
        access_.set(scratch_, v, ec);
        if (ec)
            return modbus_exception::server_device_failure;
    }
    return modbus_exception::none;
}

modbus_exception register_map::write_words(unsigned addr, unsigned count, const std::uint8_t* data) {
    if (addr + count > hold_words_.size()) {
        ++refused_;
        return modbus_exception::illegal_data_address;
    }
    for (unsigned i = 0; i < count; ++i) {
        const auto& w = hold_words_[addr + i];
        if (!w.writable) {
            ++refused_;
            return modbus_exception::illegal_data_address;
        }
        if (w.lines.size() < 16 && (be16(data + 2 * i) >> w.lines.size()) != 0)
            return modbus_exception::illegal_data_value;
    }
    for (unsigned i = 0; i < count; ++i) {
        std::error_code ec;
        access_.set(hold_words_[addr + i].lines, be16(data + 2 * i), ec);
        if (ec)
            return modbus_exception::server_device_failure;
    }
    return modbus_exception::none;
}

std::size_t register_map::answer(std::span<const std::uint8_t> pdu, std::span<std::uint8_t> out) {
    if (pdu.empty() || out.size() < max_pdu)
        return 0;
    const std::uint8_t fc = pdu[0];
    const std::uint8_t* d = pdu.data() + 1;
    const std::size_t n = pdu.size() - 1;
    out[0] = fc;
    auto ex = modbus_exception::none;
    std::size_t len = 0;
    switch (fc) {
    case 0x01:
    case 0x02: {
        if (n != 4) {
            ex = modbus_exception::illegal_data_value;
            break;
        }
        const unsigned count = be16(d + 2);
        ex = read_bits(fc == 0x01 ? coils_ : inputs_, be16(d), count, out.data() + 2);
        out[1] = static_cast<std::uint8_t>((count + 7) / 8);
        len = 2 + out[1];
        break;
    }
    case 0x03:
    case 0x04: {
        if (n != 4) {
            ex = modbus_exception::illegal_data_value;
            break;
        }
        const unsigned count = be16(d + 2);
        ex = read_words(fc == 0x03, be16(d), count, out.data() + 2);
        out[1] = static_cast<std::uint8_t>(2 * count);
        len = 2 + out[1];
        break;
    }
    case 0x05: {
        const unsigned v = n == 4 ? be16(d + 2) : 1;
        if (v != 0xFF00 && v != 0x0000) {
            ex = modbus_exception::illegal_data_value;
            break;
        }
        const std::uint8_t bit = v == 0xFF00 ? 1 : 0;
        ex = write_coils(be16(d), 1, &bit);
        std::memcpy(out.data() + 1, d, 4);
        len = 5;
        break;
    }
    case 0x06: {
        if (n != 4) {
            ex = modbus_exception::illegal_data_value;
            break;
        }
        ex = write_words(be16(d), 1, d + 2);
        std::memcpy(out.data() + 1, d, 4);
        len = 5;
        break;
    }
    case 0x0F: {
        const unsigned count = n >= 5 ? be16(d + 2) : 0;
        if (n < 5 || count < 1 || count > 0x7B0 || d[4] != (count + 7) / 8 || n != 5U + d[4]) {
            ex = modbus_exception::illegal_data_value;
            break;
        }
        ex = write_coils(be16(d), count, d + 5);
        std::memcpy(out.data() + 1, d, 4);
        len = 5;
        break;
    }
    case 0x10: {
        const unsigned count = n >= 5 ? be16(d + 2) : 0;
        if (n < 5 || count < 1 || count > 0x7B || d[4] != 2 * count || n != 5U + d[4]) {
            ex = modbus_exception::illegal_data_value;
            break;
        }
        ex = write_words(be16(d), count, d + 5);
        std::memcpy(out.data() + 1, d, 4);
        len = 5;
        break;
    }
    default:
        ex = modbus_exception::illegal_function;
        break;
    }
    if (ex != modbus_exception::none) {
        out[0] = static_cast<std::uint8_t>(fc | 0x80);
        out[1] = static_cast<std::uint8_t>(ex);
        return 2;
    }
    return len;
}

// ---- the server

namespace {

struct fd_guard {
    int fd = -1;
    explicit fd_guard(int f) : fd{f} {}
    ~fd_guard() {
        if (fd >= 0)
            ::close(fd);
    }
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;
};

// At most `burst` lines per window; the lines held back are counted into the next one.
class log_limiter {
public:
    bool allow(event_loop::clock::time_point now, std::uint64_t& suppressed) {
        if (now - window_ >= std::chrono::seconds{10}) {
            window_ = now;
            used_ = 0;
        }
        if (used_ < burst) {
            ++used_;
            suppressed = held_;
            held_ = 0;
            return true;
        }
        ++held_;
        return false;
    }

private:
    static constexpr unsigned burst = 5;
    event_loop::clock::time_point window_{};
    unsigned used_ = 0;
    std::uint64_t held_ = 0;
};

}  // namespace

struct modbus_server::impl {
    struct connection {
        fd_guard sock;
        std::string peer;
        registration watch;
        std::vector<std::uint8_t> in;
        std::vector<std::uint8_t> out;
        std::size_t out_sent = 0;
        bool watching_out = false;
        event_loop::clock::time_point last_active;
        explicit connection(int fd) : sock{fd} {}
    };

    modbus_server& owner;
    event_loop& loop;
    modbus_server_options opt;
    fd_guard listener{-1};
    std::uint16_t bound_port = 0;
    registration accept_watch;
    bool accept_paused = false;
    registration sweep;
    std::list<connection> conns;
    std::map<std::uint8_t, register_map*> units;
    modbus_server_stats stats;
    log_limiter limiter;
    std::array<std::uint8_t, 4096> rbuf{};
    std::array<std::uint8_t, mbap_size + max_pdu> reply{};

    impl(modbus_server& o, event_loop& l, const modbus_server_options& options) : owner{o}, loop{l}, opt{options} {}

    void say(const std::string& text) {
        std::uint64_t held = 0;
        if (!owner.log || !limiter.allow(event_loop::clock::now(), held))
            return;
        owner.log(held == 0 ? text : text + " (" + std::to_string(held) + " similar lines not logged)");
    }

    void open() {
        sockaddr_storage ss{};
        socklen_t len = 0;
        auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
        auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
        if (::inet_pton(AF_INET, opt.listen.c_str(), &v4->sin_addr) == 1) {
            v4->sin_family = AF_INET;
            v4->sin_port = htons(opt.port);
            len = sizeof *v4;
        } else if (::inet_pton(AF_INET6, opt.listen.c_str(), &v6->sin6_addr) == 1) {
            v6->sin6_family = AF_INET6;
            v6->sin6_port = htons(opt.port);
            len = sizeof *v6;
        } else {
            throw io::invalid_argument("modbus_server: listen address '" + opt.listen +
                                       "' is not an IPv4 or IPv6 address (e.g. 127.0.0.1, ::1, 0.0.0.0)");
        }
        listener.fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (listener.fd < 0)
            throw std::system_error(errno, std::generic_category(), "modbus_server: socket");
        const int one = 1;
        ::setsockopt(listener.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        const std::string where = opt.listen + " port " + std::to_string(opt.port);
        if (::bind(listener.fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
            const int err = errno;
            std::string hint;
            if (err == EACCES || err == EPERM)
                hint = " (ports below 1024 need CAP_NET_BIND_SERVICE; iogate.service allows no listening socket "
                       "until a drop-in sets SocketBindAllow=, see iogate(8))";
            else if (err == EADDRNOTAVAIL)
                hint = " (not an address of this machine)";
            throw std::system_error(err, std::generic_category(), "modbus_server: bind " + where + hint);
        }
        if (::listen(listener.fd, 16) != 0)
            throw std::system_error(errno, std::generic_category(), "modbus_server: listen " + where);
        len = sizeof ss;
        ::getsockname(listener.fd, reinterpret_cast<sockaddr*>(&ss), &len);
        bound_port = ntohs(ss.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
        watch_listener();
        const auto period = std::clamp<std::chrono::milliseconds>(opt.idle_timeout / 4, std::chrono::milliseconds{10},
                                                                  std::chrono::milliseconds{1000});
        sweep = loop.call_every(period, [this] { close_idle(); });
    }

    void watch_listener() {
        accept_watch = loop.watch(listener.fd, ready::in, [this](readiness) { accept_all(); });
    }

    static std::string peer_name(const sockaddr_storage& ss) {
        char host[INET6_ADDRSTRLEN] = {};
        unsigned port = 0;
        if (ss.ss_family == AF_INET) {
            const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
            ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
            ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
            port = ntohs(a->sin6_port);
        }
        return std::string{host} + ":" + std::to_string(port);
    }

    void accept_all() {
        for (;;) {
            sockaddr_storage ss{};
            socklen_t len = sizeof ss;
            const int fd = ::accept4(listener.fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return;
                say("modbus: accept: " + std::string{std::strerror(errno)} +
                    "; not accepting until the next idle check");
                // Out of descriptors (EMFILE, ENFILE) or memory: the pending
                // connection stays, and a level-triggered watch would spin.
                // (No new timer: that would take a descriptor too.)
                accept_watch.reset();
                accept_paused = true;
                return;
            }
            if (conns.size() >= opt.max_connections) {
                ++stats.refused;
                ::close(fd);
                say("modbus: connection from " + peer_name(ss) + " refused: " + std::to_string(opt.max_connections) +
                    " clients connected (max_connections)");
                continue;
            }
            const int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            ++stats.accepted;
            auto& c = conns.emplace_back(fd);
            c.peer = peer_name(ss);
            c.last_active = event_loop::clock::now();
            c.in.reserve(mbap_size + max_pdu + rbuf.size());
            rewatch(std::prev(conns.end()));
        }
    }

    using conn_it = std::list<connection>::iterator;

    void rewatch(conn_it it) {
        const bool want_out = it->out_sent < it->out.size();
        if (it->watch && want_out == it->watching_out)
            return;
        it->watch.reset();
        it->watching_out = want_out;
        // While a reply is stuck, the connection is not read: a client that
        // does not read its answers stops being served, not buffered for.
        try {
            it->watch = loop.watch(it->sock.fd, want_out ? ready::out : ready::in,
                                   [this, it](readiness r) { on_ready(it, r); });
        } catch (const std::system_error& e) {
            say("modbus: " + it->peer + ": " + e.what() + "; connection closed");
            drop(it);
        }
    }

    void drop(conn_it it) { conns.erase(it); }

    void on_ready(conn_it it, readiness r) {
        auto& c = *it;
        if (c.watching_out) {
            if (!flush(c)) {
                drop(it);
                return;
            }
            if (c.out_sent == c.out.size())
                process(it);  // what arrived meanwhile
            return;
        }
        (void)r;
        const auto n = ::recv(c.sock.fd, rbuf.data(), rbuf.size(), 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
        }
        if (n <= 0) {
            if (!c.in.empty()) {
                ++stats.truncated;
                say("modbus: " + c.peer + " closed the connection inside a frame (" + std::to_string(c.in.size()) +
                    " bytes of it received)");
            }
            drop(it);
            return;
        }
        c.last_active = event_loop::clock::now();
        c.in.insert(c.in.end(), rbuf.begin(), rbuf.begin() + n);
        process(it);
    }

    // Answers every complete frame of c.in; false when the connection was dropped.
    void process(conn_it it) {
        auto& c = *it;
        std::size_t pos = 0;
        while (c.in.size() - pos >= mbap_size && c.out_sent == c.out.size()) {
            const std::uint8_t* h = c.in.data() + pos;
            const unsigned proto = be16(h + 2);
            const unsigned length = be16(h + 4);
            if (proto != 0) {
                ++stats.bad_frames;
                say("modbus: " + c.peer + " sent a frame with protocol ID " + std::to_string(proto) +
                    " (Modbus is 0): not Modbus/TCP; connection closed");
                drop(it);
                return;
            }
            if (length < 2 || length > 1 + max_pdu) {
                ++stats.oversized;
                say("modbus: " + c.peer + " sent a frame of length " + std::to_string(length) +
                    " (allowed 2..254); connection closed");
                drop(it);
                return;
            }
            if (c.in.size() - pos < 6 + length)
                break;
            const std::size_t rlen = answer(h, length, reply.data());
            pos += 6 + length;
            c.out.assign(reply.begin(), reply.begin() + static_cast<std::ptrdiff_t>(rlen));
            c.out_sent = 0;
            if (!flush(c)) {
                drop(it);
                return;
            }
        }
        c.in.erase(c.in.begin(), c.in.begin() + static_cast<std::ptrdiff_t>(pos));
        if (c.out_sent == c.out.size()) {
            c.out.clear();
            c.out_sent = 0;
        }
        rewatch(it);
    }

    // The reply frame for one request frame (header at h, `length` bytes after the length field).
    std::size_t answer(const std::uint8_t* h, unsigned length, std::uint8_t* out) {
        ++stats.requests;
        std::memcpy(out, h, 4);  // transaction and protocol IDs
        out[6] = h[6];           // unit
        const auto u = units.find(h[6]);
        std::size_t plen = 0;
        std::uint8_t* pdu = out + mbap_size;
        if (u == units.end() || u->second == nullptr) {
            pdu[0] = static_cast<std::uint8_t>(h[7] | 0x80);
            pdu[1] = static_cast<std::uint8_t>(u == units.end() ? modbus_exception::gateway_path_unavailable
                                                                : modbus_exception::gateway_target_failed);
            plen = 2;
        } else {
            plen = u->second->answer(std::span<const std::uint8_t>{h + mbap_size, length - 1U},
                                     std::span<std::uint8_t>{pdu, max_pdu});
        }
        if (plen == 2 && (pdu[0] & 0x80) != 0)
            ++stats.exceptions;
        put16(out + 4, static_cast<unsigned>(plen + 1));
        return mbap_size + plen;
    }

    // Sends what it can; false on a broken connection.
    bool flush(connection& c) {
        while (c.out_sent < c.out.size()) {
            const auto n = ::send(c.sock.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return errno == EAGAIN || errno == EWOULDBLOCK;
            }
            c.out_sent += static_cast<std::size_t>(n);
        }
        return true;
    }

    void close_idle() {
        if (accept_paused) {
            accept_paused = false;
            watch_listener();
        }
        const auto now = event_loop::clock::now();
        for (auto it = conns.begin(); it != conns.end();) {
            if (now - it->last_active >= opt.idle_timeout) {
                ++stats.idle_closed;
                if (!it->in.empty())
                    ++stats.truncated;
                say("modbus: " + it->peer + " idle for " + std::to_string(opt.idle_timeout.count()) +
                    " ms; connection closed" + (it->in.empty() ? "" : " (inside a frame)"));
                it = conns.erase(it);
            } else {
                ++it;
            }
        }
    }
};

modbus_server::modbus_server(const modbus_server_options& options, event_loop& loop)
    : impl_{std::make_unique<impl>(*this, loop, options)} {
    if (options.max_connections == 0)
        throw io::invalid_argument("modbus_server: max_connections must be at least 1");
    if (options.idle_timeout <= std::chrono::milliseconds{0})
        throw io::invalid_argument("modbus_server: idle_timeout must be positive");
    impl_->open();
}

modbus_server::~modbus_server() = default;

void modbus_server::set_unit(std::uint8_t id, register_map* map) {
    impl_->units[id] = map;
}

void modbus_server::remove_unit(std::uint8_t id) {
    impl_->units.erase(id);
}

std::uint16_t modbus_server::port() const noexcept {
    return impl_->bound_port;
}

const modbus_server_stats& modbus_server::stats() const noexcept {
    return impl_->stats;
}

std::size_t modbus_server::connections() const noexcept {
    return impl_->conns.size();
}

}  // namespace io::gate
