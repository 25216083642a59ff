// SPDX-License-Identifier: MIT
#include <io/error.hpp>
#include <io/modbus.hpp>
#include <io/serial_port.hpp>

#include "error.hpp"
#include "event_loop_access.hpp"
#include "modbus_access.hpp"

#include <modbus.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <optional>
#include <thread>
#include <unistd.h>
#include <sys/eventfd.h>
#include <poll.h>
#include <sys/select.h>
#include <sys/socket.h>

namespace io {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

[[noreturn]] void refuse_uri(std::string_view uri, const std::string& what) {
    throw io::invalid_argument("modbus URI '" + std::string(uri) + "': " + what);
}

// A setting read by one of serial_settings.hpp's parse functions, its
// refusal naming the URI.
template <typename F>
auto named(std::string_view uri, F&& parse) {
    try {
        return parse();
    } catch (const io::invalid_argument& e) {
        refuse_uri(uri, e.what());
    }
}

// A decimal number that is all of text, in [lo, hi]; nullopt otherwise.
std::optional<unsigned long> parse_number(std::string_view text, unsigned long lo, unsigned long hi) {
    unsigned long v = 0;
    const auto* end = text.data() + text.size();
    const auto [p, ec] = std::from_chars(text.data(), end, v);
    if (text.empty() || ec != std::errc{} || p != end || v < lo || v > hi)
        return std::nullopt;
    return v;
}

constexpr unsigned max_unit = 247;  // Modbus over serial line V1.02, 2.2: 1 to 247 are unit addresses
constexpr std::size_t event_queue_size = 1024;

// Sealevel SeaI/O user manual: function codes by model (p. 54) and the
// memory map (p. 38: every space from address 0; the 470's 16 A/D inputs are
// input registers 0-15, its 2 D/A outputs holding registers 0-1). The
// 462/463 (96 programmable lines through vendor codes 0x41-0x44, frames on
// pp. 60-61) are not driven: which configuration bit sets which port is in
// the manual's Appendix C, not known here (README).
constexpr std::array<modbus_model, 7> models{{
    {"410", "Sealevel", "SeaI/O-410: 16 inputs, 16 outputs", 16, 16, "01 02 05 0F", 0, 0},
    {"420", "Sealevel", "SeaI/O-420: 16 inputs, 8 outputs", 16, 8, "01 02 05 0F", 0, 0},
    {"430", "Sealevel", "SeaI/O-430: 32 inputs", 32, 0, "02", 0, 0},
    {"440", "Sealevel", "SeaI/O-440: 32 relay outputs", 0, 32, "01 05 0F", 0, 0},
    {"450", "Sealevel", "SeaI/O-450: 16 relay outputs", 0, 16, "01 05 0F", 0, 0},
    {"470", "Sealevel", "SeaI/O-470: 8 inputs, 8 outputs, 16 A/D inputs, 2 D/A outputs", 8, 8,
     "02 01 05 0F 04 06 10", 16, 2},
    {"520", "Sealevel", "SeaI/O-520: 8 inputs, 8 outputs", 8, 8, "01 02 05 0F", 0, 0},
}};

std::string model_names() {
    std::string s;
    for (const auto& m : models)
        s += (s.empty() ? "" : ", ") + std::string(m.name);
    return s;
}

class modbus_error_category final : public std::error_category {
public:
    const char* name() const noexcept override { return "modbus"; }
    std::string message(int v) const override {
        switch (static_cast<modbus_errc>(v)) {
        case modbus_errc::illegal_function: return "illegal function (exception 01)";
        case modbus_errc::illegal_data_address: return "illegal data address (exception 02)";
        case modbus_errc::illegal_data_value: return "illegal data value (exception 03)";
        case modbus_errc::server_device_failure: return "server device failure (exception 04)";
        case modbus_errc::acknowledge: return "acknowledge (exception 05)";
        case modbus_errc::server_device_busy: return "server device busy (exception 06)";
        case modbus_errc::negative_acknowledge: return "negative acknowledge (exception 07)";
        case modbus_errc::memory_parity_error: return "memory parity error (exception 08)";
        case modbus_errc::gateway_path_unavailable: return "gateway path unavailable (exception 0A)";
        case modbus_errc::gateway_target_no_response: return "gateway target failed to respond (exception 0B)";
        case modbus_errc::bad_crc: return "reply with a bad CRC";
        case modbus_errc::bad_reply: return "reply that does not answer the request";
        }
        return "modbus error " + std::to_string(v);
    }
};

// libmodbus's errno (its own codes above MODBUS_ENOBASE) as libio reports it.
std::error_code modbus_code(int err) noexcept {
    if (err > MODBUS_ENOBASE && err <= EMBXGTAR)
        return make_error_code(static_cast<modbus_errc>(err - MODBUS_ENOBASE));
    if (err == EMBBADCRC)
        return make_error_code(modbus_errc::bad_crc);
    if (err > EMBBADCRC && err <= EMBBADSLAVE)
        return make_error_code(modbus_errc::bad_reply);
    return detail::errno_code(err);
}

// The Modbus RTU CRC (Modbus over serial line V1.02, 6.2.2): CRC-16 with
// polynomial 0xA001 (reflected 0x8005), initial value 0xFFFF, low byte sent first.
std::uint16_t crc16(std::span<const std::uint8_t> data) noexcept {
    std::uint16_t crc = 0xFFFF;
    for (const auto b : data) {
        crc ^= b;
        for (int i = 0; i < 8; ++i)
            crc = (crc & 1U) != 0 ? static_cast<std::uint16_t>((crc >> 1) ^ 0xA001U) : static_cast<std::uint16_t>(crc >> 1);
    }
    return crc;
}

// Sealevel SeaI/O user manual, "Extended Modbus Command Set" (p. 56) and
// Appendix A: Get Config, function 0x45 without data, answers five bytes,
// the first the model's code (the order of the other four differs between
// the two pages; libio reads only the model). 0x00 means a model outside the
// 4xx series, identified by Get Extended Module Information (0x66).
constexpr std::uint8_t get_config = 0x45;
constexpr std::array<std::pair<std::uint8_t, std::string_view>, 8> seaio_model_codes{{
    {0x9A, "410"}, {0xA4, "420"}, {0xAE, "430"}, {0xB8, "440"},
    {0xC2, "450"}, {0xCE, "462"}, {0xCF, "463"}, {0xD6, "470"},
}};

bool is_exception(int err) noexcept {
    return err > MODBUS_ENOBASE && err <= EMBXGTAR;
}

std::uint64_t monotonic_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000U + static_cast<std::uint64_t>(ts.tv_nsec);
}

// Modbus over serial line V1.02, 2.5.1.1: frames are separated by at least
// 3.5 character times, fixed at 1.75 ms above 19200 baud.
std::chrono::microseconds frame_gap(const serial_settings& s) {
    if (s.baud() > 19200)
        return 1750us;
    const unsigned bits = 1 + 8 + (s.parity() == parity::none ? 0U : 1U) + (s.stop_bits() == stop_bits::two ? 2U : 1U);
    return std::chrono::microseconds(bits * 3'500'000ULL / s.baud() + 1);  // 3.5 x bits / baud s, in us
}

}  // namespace

const std::error_category& modbus_category() noexcept {
    static const modbus_error_category category;
    return category;
}

std::span<const modbus_model> modbus_models() noexcept {
    return models;
}

const modbus_model& find_modbus_model(std::string_view name) {
    for (const auto& m : models)
        if (m.name == name)
            return m;
    if (name == "462" || name == "463")
        throw io::invalid_argument("modbus model " + std::string(name) +
                                   " uses the vendor function codes 0x41-0x44, which libio does not drive yet; "
                                   "known models: " + model_names());
    throw io::invalid_argument("unknown modbus model '" + std::string(name) + "'; known models: " + model_names());
}

modbus_address parse_modbus_uri(std::string_view uri) {
    constexpr std::string_view rtu_scheme = "modbus-rtu:";
    constexpr std::string_view tcp_scheme = "modbus-tcp://";
    modbus_address a;
    std::string_view rest;
    if (uri.starts_with(rtu_scheme)) {
        a.transport = modbus_transport::rtu;
        rest = uri.substr(rtu_scheme.size());
        if (rest.starts_with("//"))
            rest.remove_prefix(2);
    } else if (uri.starts_with(tcp_scheme)) {
        a.transport = modbus_transport::tcp;
        rest = uri.substr(tcp_scheme.size());
    } else {
        const auto colon = uri.find(':');
        refuse_uri(uri, (colon == std::string_view::npos ? std::string("no scheme")
                                                         : "unknown scheme '" + std::string(uri.substr(0, colon)) + "'") +
                            "; allowed modbus-rtu:DEVICE?PARAMS and modbus-tcp://HOST[:PORT]?PARAMS");
    }
    const auto q = rest.find('?');
    const std::string_view where = rest.substr(0, q);
    const std::string_view query = q == std::string_view::npos ? std::string_view{} : rest.substr(q + 1);

    if (a.transport == modbus_transport::rtu) {
        if (!where.starts_with('/'))
            refuse_uri(uri, "the serial device must be an absolute path (/dev/ttyS4, /dev/serial/by-card/...)");
        a.device = std::string(where);
    } else {
        std::string_view host = where;
        std::string_view port;
        if (host.starts_with('[')) {
            const auto close = host.find(']');
            if (close == std::string_view::npos)
                refuse_uri(uri, "an IPv6 address lacks its closing ']'");
            port = host.substr(close + 1);
            host = host.substr(1, close - 1);
            if (!port.empty() && !port.starts_with(':'))
                refuse_uri(uri, "after ']' only ':PORT' may follow");
            if (!port.empty())
                port.remove_prefix(1);
        } else if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
            port = host.substr(colon + 1);
            host = host.substr(0, colon);
        }
        if (host.empty())
            refuse_uri(uri, "no host; write modbus-tcp://HOST[:PORT]");
        if (host.find_first_of("/@ ") != std::string_view::npos)
            refuse_uri(uri, "host '" + std::string(host) + "' is not a host name or address");
        a.host = std::string(host);
        if (!port.empty() || where.ends_with(':')) {
            const auto p = parse_number(port, 1, 65535);
            if (!p)
                refuse_uri(uri, "port '" + std::string(port) + "' is not valid; allowed 1 to 65535");
            a.port = static_cast<std::uint16_t>(*p);
        }
    }

    std::vector<std::string_view> seen;
    std::string_view params = query;
    while (!params.empty()) {
        const auto amp = params.find('&');
        const auto item = params.substr(0, amp);
        params = amp == std::string_view::npos ? std::string_view{} : params.substr(amp + 1);
        if (item.empty())
            continue;
        const auto eq = item.find('=');
        const auto key = item.substr(0, eq);
        const auto value = eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
        if (eq == std::string_view::npos)
            refuse_uri(uri, "parameter '" + std::string(key) + "' has no value; write " + std::string(key) + "=VALUE");
        if (std::find(seen.begin(), seen.end(), key) != seen.end())
            refuse_uri(uri, "parameter '" + std::string(key) + "' is given twice");
        seen.push_back(key);
        const bool rtu = a.transport == modbus_transport::rtu;
        const auto bad = [&](const std::string& allowed) {
            refuse_uri(uri, std::string(key) + " '" + std::string(value) + "' is not valid; allowed " + allowed);
        };
        if (key == "unit") {
            const auto v = parse_number(value, 1, max_unit);
            if (!v)
                bad("1 to 247");
            a.unit = static_cast<unsigned>(*v);
        } else if (key == "model") {
            a.model = std::string(find_modbus_model(value).name);
        } else if (key == "timeout") {
            const auto v = parse_number(value, 1, 10000);
            if (!v)
                bad("1 to 10000 (ms)");
            a.timeout = std::chrono::milliseconds(*v);
        } else if (key == "retries") {
            const auto v = parse_number(value, 0, 10);
            if (!v)
                bad("0 to 10");
            a.retries = static_cast<unsigned>(*v);
        } else if (rtu && key == "baud") {
            const auto v = parse_number(value, serial_settings::min_baud, serial_settings::max_baud);
            if (!v)
                bad(std::to_string(serial_settings::min_baud) + " to " + std::to_string(serial_settings::max_baud));
            a.serial.set_baud(static_cast<std::uint32_t>(*v));
        } else if (rtu && key == "parity") {
            // libio's names of the settings (serial_settings.hpp); Modbus RTU
            // has no mark or space parity (Modbus over serial line V1.02, 2.5.1).
            const auto p = named(uri, [&] { return parse_parity(value); });
            if (p == parity::mark || p == parity::space)
                bad("none, even, odd");
            a.serial.set_parity(p);
        } else if (rtu && key == "stop") {
            a.serial.set_stop_bits(named(uri, [&] { return parse_stop_bits(value); }));
        } else if (rtu && key == "mode") {
            a.serial.set_mode(named(uri, [&] { return parse_serial_mode(value); }));
        } else {
            refuse_uri(uri, "unknown parameter '" + std::string(key) + "'; allowed " +
                                (rtu ? "baud, parity, stop, mode, unit, model, timeout, retries"
                                     : "unit, model, timeout, retries"));
        }
    }
    return a;
}

std::string to_string(const modbus_address& a) {
    const modbus_address d;
    std::string s;
    std::string q;
    const auto param = [&q](std::string_view k, const std::string& v) {
        q += (q.empty() ? "?" : "&") + std::string(k) + "=" + v;
    };
    if (a.transport == modbus_transport::rtu) {
        s = "modbus-rtu:" + a.device;
        if (a.serial.baud() != d.serial.baud())
            param("baud", std::to_string(a.serial.baud()));
        if (a.serial.parity() != parity::none)
            param("parity", to_string(a.serial.parity()));
        if (a.serial.stop_bits() == stop_bits::two)
            param("stop", "2");
        if (a.serial.mode() != serial_mode::rs232)
            param("mode", to_string(a.serial.mode()));
    } else {
        s = "modbus-tcp://" + (a.host.find(':') != std::string::npos ? "[" + a.host + "]" : a.host);
        if (a.port != d.port)
            s += ":" + std::to_string(a.port);
    }
    if (a.unit != 0)
        param("unit", std::to_string(a.unit));
    if (!a.model.empty())
        param("model", a.model);
    if (a.timeout != d.timeout)
        param("timeout", std::to_string(a.timeout.count()));
    if (a.retries != d.retries)
        param("retries", std::to_string(a.retries));
    return s + q;
}

namespace detail {

struct modbus_module_state {
    modbus_module_state(const modbus_model& m, unsigned u) : model{&m}, unit{u} {
        efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (efd < 0)
            detail::throw_errno(errno, "modbus module: eventfd");
        queue.resize(event_queue_size);
        line_seqno.resize(m.inputs);
    }
    ~modbus_module_state() { ::close(efd); }
    modbus_module_state(const modbus_module_state&) = delete;
    modbus_module_state& operator=(const modbus_module_state&) = delete;

    const modbus_model* model;
    unsigned unit;
    card_info info;
    int efd = -1;

    // Guarded by the bus's mutex.
    bool polling = false;
    steady::duration period{};
    steady::time_point next{};

    // Guarded by mutex: the event queue (a ring made once) and what the
    // polls have seen.
    mutable std::mutex mutex;
    std::vector<modbus_event> queue;
    std::size_t head = 0;
    std::size_t count = 0;
    std::uint64_t lost = 0;
    std::uint64_t seqno = 0;
    std::vector<std::uint64_t> line_seqno;
    bool have_levels = false;
    std::uint64_t levels = 0;
    bool present = true;
    std::uint64_t polls = 0;

    void push(modbus_event e) {  // with mutex held
        e.seqno = ++seqno;
        if (count == queue.size()) {
            ++lost;
            return;
        }
        queue[(head + count) % queue.size()] = e;
        ++count;
    }

    // The bus's thread, after each poll.
    void polled(std::error_code ec, std::uint64_t bits, std::uint64_t when) {
        const std::lock_guard lock{mutex};
        ++polls;
        const std::size_t before = count;
        if (ec) {
            if (present)
                push({.what = modbus_event::kind::gone, .timestamp_ns = when, .error = ec});
            present = false;
        } else {
            if (!present)
                push({.what = modbus_event::kind::back, .timestamp_ns = when, .error = {}});
            present = true;
            if (have_levels && model->inputs > 0) {
                const std::uint64_t changed = bits ^ levels;
                for (unsigned i = 0; i < model->inputs; ++i)
                    if ((changed >> i) & 1U)
                        push({.what = modbus_event::kind::edge,
                              .line = i,
                              .change = (bits >> i) & 1U ? edge::rising : edge::falling,
                              .timestamp_ns = when,
                              .line_seqno = ++line_seqno[i],
                              .error = {}});
            }
            have_levels = true;
            levels = bits;
        }
        if (count != before) {
            const std::uint64_t one = 1;
            [[maybe_unused]] const auto n = ::write(efd, &one, sizeof one);
        }
    }
};

struct modbus_bus_state {
    explicit modbus_bus_state(const modbus_address& a) : address{a}, rtu{a.transport == modbus_transport::rtu} {
        if (rtu) {
            if (a.serial.parity() == parity::mark || a.serial.parity() == parity::space)
                throw io::invalid_argument("modbus RTU on " + a.device + ": parity " + to_string(a.serial.parity()) +
                                           " is not used by Modbus; allowed none, even, odd");
            line = a.serial;
            line.set_data_bits(8);
            const char par = line.parity() == parity::even ? 'E' : line.parity() == parity::odd ? 'O' : 'N';
            ctx = modbus_new_rtu(a.device.c_str(), static_cast<int>(line.baud()), par, 8,
                                 line.stop_bits() == stop_bits::two ? 2 : 1);
            if (ctx == nullptr)
                detail::throw_errno(errno, "modbus RTU on " + a.device);
            try {
                open_serial();
            } catch (...) {
                modbus_free(ctx);
                throw;
            }
            gap = frame_gap(line);
        } else {
            ctx = modbus_new_tcp_pi(a.host.c_str(), std::to_string(a.port).c_str());
            if (ctx == nullptr)
                detail::throw_errno(errno, "modbus TCP to " + to_string(a));
        }
        modbus_set_error_recovery(ctx, MODBUS_ERROR_RECOVERY_NONE);
        const auto sec = static_cast<std::uint32_t>(a.timeout.count() / 1000);
        const auto usec = static_cast<std::uint32_t>(a.timeout.count() % 1000 * 1000);
        modbus_set_response_timeout(ctx, sec, usec);
        modbus_set_byte_timeout(ctx, sec, usec);
        worker = std::thread([this] { run(); });
    }

    ~modbus_bus_state() {
        {
            const std::lock_guard lock{mutex};
            stopping = true;
        }
        wake.notify_all();
        worker.join();
        if (rtu)
            close_serial();
        else
            modbus_close(ctx);
        modbus_free(ctx);
    }
    modbus_bus_state(const modbus_bus_state&) = delete;
    modbus_bus_state& operator=(const modbus_bus_state&) = delete;

    // libio opens and configures the line (exclusive access, settings
    // validated and read back, RS-485 through TIOCSRS485, restored at close)
    // and libmodbus only frames on its descriptor: handing it the fd with
    // modbus_set_socket() instead of modbus_connect() keeps one owner of the
    // port, and libmodbus, which would set its own termios and could not
    // open a port libio holds with TIOCEXCL, never opens or closes it.
    void open_serial() {
        serial.emplace(address.device, line);
        if (serial->fd() >= FD_SETSIZE) {  // libmodbus waits for replies with select()
            const auto fd = serial->fd();
            serial.reset();
            throw std::system_error(detail::errno_code(EMFILE),
                                    "modbus RTU on " + address.device + ": descriptor " + std::to_string(fd) +
                                        " is beyond what libmodbus's select() can wait on (" +
                                        std::to_string(FD_SETSIZE) + ")");
        }
        try {
            serial->set_low_latency(true);
        } catch (const std::system_error& e) {
            if (e.code() != std::errc::inappropriate_io_control_operation)  // ptys have no serial_struct
                throw;
        }
        modbus_set_socket(ctx, serial->fd());
    }

    // The port is libio's: libmodbus must not restore or close it.
    void close_serial() noexcept {
        modbus_set_socket(ctx, -1);
        serial.reset();
    }

    // Whether a failed RTU request failed because the serial device went
    // away (a USB adapter unplugged, a card removed): the tty is hung up, so
    // reads end at once (libmodbus's ECONNRESET for end of file) or fail
    // with EIO/ENXIO/ENODEV, and poll() reports POLLHUP.
    bool port_gone(int err) const noexcept {
        switch (err) {
        case ECONNRESET:
        case EIO:
        case ENXIO:
        case ENODEV:
        case EBADF:
        case EPIPE:
            return true;
        default:
            break;
        }
        pollfd p{serial->fd(), 0, 0};
        return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;
    }

    // Runs f (a libmodbus request, returning < 0 with errno on failure) for
    // `unit` on the bus's thread, with reconnection, frame gaps and retries.
    // On RTU a port that went away is closed, and opened again by the path
    // it was named by at the next attempt: a request that finds it still
    // absent fails with the error of the open (ENOENT while the node is gone).
    template <typename F>
    std::error_code transact(unsigned unit, F&& f) {
        return transact(unit, address.retries, std::forward<F>(f));
    }
    template <typename F>
    std::error_code transact(unsigned unit, unsigned retries, F&& f) {
        std::error_code last;
        for (unsigned attempt = 0; attempt <= retries; ++attempt) {
            if (rtu && !serial) {
                try {
                    open_serial();
                } catch (const std::system_error& e) {
                    last = e.code();
                    continue;
                }
            }
            if (!rtu && !connected) {
                if (modbus_connect(ctx) < 0) {
                    last = modbus_code(errno);
                    continue;
                }
                connected = true;
            }
            if (rtu)
                std::this_thread::sleep_until(last_frame + gap);
            modbus_set_slave(ctx, static_cast<int>(unit));
            const int rc = f(ctx);
            const int err = rc < 0 ? errno : 0;
            last_frame = steady::now();
            if (rc >= 0)
                return {};
            last = modbus_code(err);
            if (is_exception(err))
                return last;  // the module answered: sending again would not help
            if (rtu) {
                if (port_gone(err)) {
                    close_serial();
                    last = detail::errno_code(ENODEV);
                    continue;
                }
                // A late or partial reply must not be taken for the answer
                // to the next request: let the line go quiet, then drop it.
                std::this_thread::sleep_until(last_frame + gap);
                modbus_flush(ctx);
            } else {
                // Likewise on TCP, where a fresh connection is the only
                // sure way to be rid of a late reply.
                modbus_close(ctx);
                connected = false;
            }
        }
        return last;
    }

    // Runs f (requests through transact) on the caller's thread once the
    // bus is free: the wire is held by one request at a time, a caller's or
    // the bus thread's polls, without a hand-over between threads (no
    // wake-up of the bus thread and back, no allocation). A caller waits
    // for the poll on the wire, if any, and no longer: while one waits the
    // bus thread starts no poll. (A mutex alone is not fair: the bus
    // thread, polling back to back, took the wire again each time before a
    // waiting caller woke, and a get() behind a module that times out
    // waited for dozens of polls.)
    template <typename F>
    auto call(F&& f) {
        struct queued {
            modbus_bus_state& bus;
            explicit queued(modbus_bus_state& b) : bus{b} {
                const std::lock_guard lock{bus.mutex};
                ++bus.callers;
            }
            ~queued() {
                {
                    const std::lock_guard lock{bus.mutex};
                    --bus.callers;
                }
                bus.wake.notify_all();
            }
            queued(const queued&) = delete;
            queued& operator=(const queued&) = delete;
        };
        std::unique_lock<std::mutex> on_wire;
        {
            const queued in_line{*this};
            on_wire = std::unique_lock{wire};
        }
        return std::forward<F>(f)();
    }

    // Reads exactly buf.size() bytes of a reply by `deadline`; false with
    // errno set (ETIMEDOUT, or the error) otherwise.
    bool read_reply(std::span<std::uint8_t> buf, steady::time_point deadline) {
        std::size_t got = 0;
        while (got < buf.size()) {
            const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - steady::now());
            if (left <= 0us) {
                errno = ETIMEDOUT;
                return false;
            }
            if (rtu) {
                std::error_code ec;
                got += serial->read(std::as_writable_bytes(buf.subspan(got)), read_timeouts{.total = left, .inter_byte = 0us}, ec);
                if (ec) {
                    errno = ec.value();
                    return false;
                }
                continue;
            }
            pollfd p{modbus_get_socket(ctx), POLLIN, 0};
            const int r = ::poll(&p, 1, static_cast<int>((left.count() + 999) / 1000));
            if (r < 0 && errno != EINTR)
                return false;
            if (r <= 0)
                continue;
            const auto n = ::recv(p.fd, buf.data() + got, buf.size() - got, 0);
            if (n == 0) {
                errno = ECONNRESET;
                return false;
            }
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN)
                    continue;
                return false;
            }
            got += static_cast<std::size_t>(n);
        }
        return true;
    }

    // One Get Config exchange for the current unit: returns the model code,
    // or -1 with errno as libmodbus sets it. libmodbus sends the request (it
    // adds the CRC or the MBAP header) but cannot size a reply to a function
    // it does not know, so the reply is read and checked here.
    int exchange_get_config(unsigned unit) {
        const std::array<std::uint8_t, 2> req{static_cast<std::uint8_t>(unit), get_config};
        if (modbus_send_raw_request(ctx, req.data(), static_cast<int>(req.size())) < 0)
            return -1;
        const auto deadline = steady::now() + address.timeout;
        // RTU: unit, function, data, CRC. TCP: MBAP (7 bytes, the unit its
        // last) then function and data.
        const std::size_t head = rtu ? 2 : 8;
        std::array<std::uint8_t, 16> rsp{};
        if (!read_reply(std::span{rsp}.first(head), deadline))
            return -1;
        const std::uint8_t function = rsp[head - 1];
        const std::size_t data = function == (get_config | 0x80U) ? 1 : 5;
        const std::size_t total = head + data + (rtu ? 2 : 0);
        if (!rtu && (rsp[2] != 0 || rsp[3] != 0 || (std::size_t{rsp[4]} << 8 | rsp[5]) != data + 2)) {
            errno = EMBBADDATA;  // not Modbus, or a length that does not fit the function
            return -1;
        }
        if (!read_reply(std::span{rsp}.subspan(head, total - head), deadline))
            return -1;
        if (rtu) {
            const auto crc = crc16(std::span{rsp}.first(total - 2));
            if (rsp[total - 2] != (crc & 0xFFU) || rsp[total - 1] != (crc >> 8)) {
                errno = EMBBADCRC;
                return -1;
            }
        }
        if (rsp[rtu ? 0 : 6] != unit) {
            errno = EMBBADSLAVE;
            return -1;
        }
        if (function != get_config) {
            errno = function == (get_config | 0x80U) ? MODBUS_ENOBASE + rsp[head] : EMBBADDATA;
            return -1;
        }
        return rsp[head];
    }

    void poll(modbus_module_state& m) {
        std::array<std::uint8_t, 64> bits{};
        const bool inputs = m.model->inputs > 0;
        const int n = static_cast<int>(inputs ? m.model->inputs : m.model->outputs);
        const auto ec = transact(m.unit, [&](modbus_t* c) {
            return inputs ? modbus_read_input_bits(c, 0, n, bits.data()) : modbus_read_bits(c, 0, n, bits.data());
        });
        const auto when = monotonic_ns();
        std::uint64_t v = 0;
        for (int i = 0; i < n && inputs; ++i)
            v |= static_cast<std::uint64_t>(bits[static_cast<std::size_t>(i)] != 0) << i;
        m.polled(ec, v, when);
    }

    void run() {
        std::unique_lock lock{mutex};
        for (;;) {
            if (stopping)
                return;
            if (callers > 0) {  // a caller's request goes first (call())
                wake.wait(lock, [this] { return callers == 0 || stopping; });
                continue;
            }
            std::shared_ptr<modbus_module_state> due;
            for (const auto& m : pollers)
                if (m->polling && (!due || m->next < due->next))
                    due = m;
            if (!due) {
                wake.wait(lock);
                continue;
            }
            const auto now = steady::now();
            if (due->next > now) {
                wake.wait_until(lock, due->next);
                continue;
            }
            // Absolute deadlines; ticks missed while the bus was busy are not replayed.
            due->next += due->period;
            if (due->next <= now)
                due->next += (now - due->next) / due->period * due->period + due->period;
            lock.unlock();
            {
                const std::lock_guard on_wire{wire};
                poll(*due);
            }
            due.reset();
            lock.lock();
        }
    }

    const modbus_address address;
    const bool rtu;
    serial_settings line;               // rtu: as applied to the port
    std::optional<serial_port> serial;  // rtu: the port, while open
    modbus_t* ctx = nullptr;
    bool connected = false;
    std::chrono::microseconds gap{0};
    steady::time_point last_frame{};

    // Held while a request is on the wire (ctx, serial, connected,
    // last_frame): by a caller's call() or by the bus's thread for a poll.
    // Never taken with `mutex` held (call() takes `mutex` briefly with it).
    std::mutex wire;

    // Guards the poll schedule: pollers, their polling, period and next,
    // stopping, and the callers waiting for the wire.
    std::mutex mutex;
    std::condition_variable wake;
    std::vector<std::shared_ptr<modbus_module_state>> pollers;
    bool stopping = false;
    unsigned callers = 0;
    std::thread worker;
};

}  // namespace detail

modbus_bus::modbus_bus(const modbus_address& address)
    : state_{std::make_shared<detail::modbus_bus_state>(address)} {}
modbus_bus::modbus_bus(std::string_view uri) : modbus_bus(parse_modbus_uri(uri)) {}
modbus_bus::~modbus_bus() = default;
modbus_bus::modbus_bus(modbus_bus&&) noexcept = default;
modbus_bus& modbus_bus::operator=(modbus_bus&&) noexcept = default;

const modbus_address& modbus_bus::address() const {
    if (!state_)
        throw usage_error("modbus_bus: used after being moved from");
    return state_->address;
}

std::vector<unsigned> modbus_bus::scan(unsigned first, unsigned last) {
    return scan(first, last, {});
}

std::vector<unsigned> modbus_bus::scan(unsigned first, unsigned last,
                                       const std::function<void(unsigned unit, std::size_t found)>& progress) {
    if (!state_)
        throw usage_error("modbus_bus: used after being moved from");
    if (first < 1 || last > max_unit || first > last)
        throw io::invalid_argument("modbus scan of units " + std::to_string(first) + " to " + std::to_string(last) +
                                   ": allowed a range within 1 to 247");
    auto& bus = *state_;
    std::vector<unsigned> found;
    for (unsigned unit = first; unit <= last; ++unit) {
        if (progress)
            progress(unit, found.size());
        const bool answered = bus.call([&bus, unit] {
            std::uint8_t bit = 0;
            const auto ec = bus.transact(unit, 0, [&](modbus_t* c) { return modbus_read_input_bits(c, 0, 1, &bit); });
            return !ec || (ec.category() == modbus_category() && ec.value() < static_cast<int>(modbus_errc::bad_crc));
        });
        if (answered)
            found.push_back(unit);
    }
    return found;
}

const modbus_model& modbus_bus::identify(unsigned unit) {
    if (!state_)
        throw usage_error("modbus_bus: used after being moved from");
    if (unit < 1 || unit > max_unit)
        throw io::invalid_argument("modbus unit " + std::to_string(unit) + " is out of range; allowed 1 to 247");
    auto& bus = *state_;
    int code = -1;
    const auto ec = bus.call([&bus, unit, &code] {
        return bus.transact(unit, [&](modbus_t*) { return code = bus.exchange_get_config(unit); });
    });
    const auto where = "identify unit " + std::to_string(unit) + " on " + to_string(bus.address);
    if (ec)
        throw std::system_error(ec, where + " (Get Config, function 0x45)");
    for (const auto& [c, name] : seaio_model_codes)
        if (c == code) {
            for (const auto& m : models)
                if (m.name == name)
                    return m;
            throw std::system_error(std::make_error_code(std::errc::not_supported),
                                    where + ": model " + std::string(name) +
                                        " uses the vendor function codes 0x41-0x44, which libio does not drive yet");
        }
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned>(code));
    throw std::system_error(std::make_error_code(std::errc::not_supported),
                            where + ": model code " + hex +
                                (code == 0 ? " (a model outside the SeaI/O 4xx series)" : " (not a known SeaI/O model)") +
                                "; give the model (model=" + model_names() + ")");
}

namespace {

card_info module_info(const modbus_address& bus, const modbus_model& m, unsigned unit) {
    modbus_address a = bus;
    a.unit = unit;
    a.model = std::string(m.name);
    card_info c;
    c.location = to_string(a);
    c.name = c.location;
    c.label = c.location;
    c.model = "seaio-" + std::string(m.name);
    c.vendor = std::string(m.vendor);
    c.driver = "modbus";
    c.cos = "poll";
    c.num_lines = m.inputs + m.outputs;
    if (m.inputs > 0)
        c.ports.push_back({"DI", m.inputs, true, false});
    if (m.outputs > 0)
        c.ports.push_back({"DO", m.outputs, false, true});
    return c;
}

}  // namespace

modbus_module::modbus_module(modbus_bus& bus, unsigned unit, std::string_view model) : bus_{bus.state_} {
    if (!bus_)
        throw usage_error("modbus_module: the bus was moved from");
    if (unit < 1 || unit > max_unit)
        throw io::invalid_argument("modbus unit " + std::to_string(unit) + " is out of range; allowed 1 to 247");
    const auto& m = find_modbus_model(model);
    state_ = std::make_shared<detail::modbus_module_state>(m, unit);
    state_->info = module_info(bus_->address, m, unit);
}

modbus_module::modbus_module(modbus_bus& bus, unsigned unit) : modbus_module(bus, unit, bus.identify(unit).name) {}

modbus_module::modbus_module(std::string_view uri) {
    const auto a = parse_modbus_uri(uri);
    if (a.unit == 0)
        throw io::invalid_argument("modbus URI '" + std::string(uri) + "': no unit; add unit=1..247");
    modbus_bus bus(a);
    *this = a.model.empty() ? modbus_module(bus, a.unit) : modbus_module(bus, a.unit, a.model);
}

modbus_module::~modbus_module() {
    if (bus_ && state_) {
        const std::lock_guard lock{bus_->mutex};
        std::erase(bus_->pollers, state_);
    }
}

modbus_module::modbus_module(modbus_module&&) noexcept = default;
modbus_module& modbus_module::operator=(modbus_module&& o) noexcept {
    if (this != &o) {
        modbus_module gone(std::move(*this));
        bus_ = std::move(o.bus_);
        state_ = std::move(o.state_);
    }
    return *this;
}

namespace {
const detail::modbus_module_state& usable(const std::shared_ptr<detail::modbus_module_state>& s) {
    if (!s)
        throw usage_error("modbus_module: used after being moved from");
    return *s;
}

std::string line_list(const modbus_model& m) {
    std::string s;
    if (m.inputs > 0)
        s += "DI0..DI" + std::to_string(m.inputs - 1);
    if (m.outputs > 0)
        s += (s.empty() ? "" : ", ") + std::string("DO0..DO") + std::to_string(m.outputs - 1);
    return s;
}
}  // namespace

void detail::modbus_access::set_name(modbus_module& m, const std::string& name) {
    if (!m.state_)
        throw usage_error("modbus_module: used after being moved from");
    auto& info = m.state_->info;
    info.name = name;
    info.label = name;
}

const card_info& modbus_module::info() const {
    return usable(state_).info;
}
const modbus_model& modbus_module::model() const {
    return *usable(state_).model;
}
unsigned modbus_module::unit() const {
    return usable(state_).unit;
}

unsigned modbus_module::find_line(std::string_view name) const {
    const auto& m = *usable(state_).model;
    const bool in = name.starts_with("DI");
    const bool out = name.starts_with("DO");
    const unsigned width = in ? m.inputs : m.outputs;
    if ((in || out) && width > 0) {
        if (const auto i = parse_number(name.substr(2), 0, width - 1))
            return static_cast<unsigned>(*i) + (in ? 0 : m.inputs);
    }
    throw io::invalid_argument("modbus module " + state_->info.location + " has no line '" + std::string(name) +
                               "'; its lines are " + line_list(m));
}

std::string modbus_module::line_name(unsigned offset) const {
    const auto& m = *usable(state_).model;
    if (offset < m.inputs)
        return "DI" + std::to_string(offset);
    if (offset < m.inputs + m.outputs)
        return "DO" + std::to_string(offset - m.inputs);
    throw io::invalid_argument("modbus module " + state_->info.location + " has no line at offset " +
                               std::to_string(offset) + "; allowed 0 to " +
                               std::to_string(m.inputs + m.outputs - 1));
}

bool modbus_module::get(unsigned offset, std::error_code& ec) const noexcept {
    if (!state_ || offset >= state_->model->inputs + state_->model->outputs) {
        ec = std::make_error_code(std::errc::invalid_argument);
        return false;
    }
    const auto& m = *state_->model;
    std::uint8_t bit = 0;
    try {
        ec = bus_->call([&] {
            return bus_->transact(state_->unit, [&](modbus_t* c) {
                return offset < m.inputs ? modbus_read_input_bits(c, static_cast<int>(offset), 1, &bit)
                                         : modbus_read_bits(c, static_cast<int>(offset - m.inputs), 1, &bit);
            });
        });
    } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
    } catch (const std::system_error& e) {
        ec = e.code();
    } catch (...) {
        ec = std::make_error_code(std::errc::io_error);
    }
    return bit != 0;
}

bool modbus_module::get(unsigned offset) const {
    const auto name = line_name(offset);
    std::error_code ec;
    const bool v = get(offset, ec);
    if (ec)
        throw std::system_error(ec, "read " + name + " of " + state_->info.location);
    return v;
}

void modbus_module::set(unsigned offset, bool value, std::error_code& ec) noexcept {
    if (!state_ || offset < state_->model->inputs || offset >= state_->model->inputs + state_->model->outputs) {
        ec = std::make_error_code(std::errc::invalid_argument);
        return;
    }
    const int addr = static_cast<int>(offset - state_->model->inputs);
    try {
        ec = bus_->call([&] {
            return bus_->transact(state_->unit,
                                  [&](modbus_t* c) { return modbus_write_bit(c, addr, value ? 1 : 0); });
        });
    } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
    } catch (const std::system_error& e) {
        ec = e.code();
    } catch (...) {
        ec = std::make_error_code(std::errc::io_error);
    }
}

void modbus_module::set(unsigned offset, bool value) {
    const auto name = line_name(offset);
    if (offset < state_->model->inputs)
        throw io::invalid_argument("modbus module " + state_->info.location + ": " + name +
                                   " is an input; outputs are " + line_list(*state_->model));
    std::error_code ec;
    set(offset, value, ec);
    if (ec)
        throw std::system_error(ec, "set " + name + " of " + state_->info.location);
}

namespace {
// The port named `port` of a module: true for DI, false for DO.
bool port_is_input(const detail::modbus_module_state& s, std::string_view port) {
    if (port == "DI" && s.model->inputs > 0)
        return true;
    if (port == "DO" && s.model->outputs > 0)
        return false;
    std::string ports;
    for (const auto& p : s.info.ports)
        ports += (ports.empty() ? "" : ", ") + p.name;
    throw io::invalid_argument("modbus module " + s.info.location + " has no port '" + std::string(port) +
                               "'; its ports are " + ports);
}
}  // namespace

std::uint64_t modbus_module::read_port(std::string_view port) const {
    const bool in = port_is_input(usable(state_), port);
    const int n = static_cast<int>(in ? state_->model->inputs : state_->model->outputs);
    std::array<std::uint8_t, 64> bits{};
    const auto ec = bus_->call([&] {
        return bus_->transact(state_->unit, [&](modbus_t* c) {
            return in ? modbus_read_input_bits(c, 0, n, bits.data()) : modbus_read_bits(c, 0, n, bits.data());
        });
    });
    if (ec)
        throw std::system_error(ec, "read " + std::string(port) + " of " + state_->info.location);
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i)
        v |= static_cast<std::uint64_t>(bits[static_cast<std::size_t>(i)] != 0) << i;
    return v;
}

void modbus_module::write_port(std::string_view port, std::uint64_t value) {
    if (port_is_input(usable(state_), port))
        throw io::invalid_argument("modbus module " + state_->info.location + ": port " + std::string(port) +
                                   " is an input port; write DO");
    const unsigned n = state_->model->outputs;
    if (n < 64 && (value >> n) != 0)
        throw io::invalid_argument("modbus module " + state_->info.location + ": value " + std::to_string(value) +
                                   " does not fit port DO of " + std::to_string(n) + " lines; allowed 0 to " +
                                   std::to_string((std::uint64_t{1} << n) - 1));
    std::array<std::uint8_t, 64> bits{};
    for (unsigned i = 0; i < n; ++i)
        bits[i] = static_cast<std::uint8_t>((value >> i) & 1U);
    const auto ec = bus_->call([&] {
        return bus_->transact(state_->unit,
                              [&](modbus_t* c) { return modbus_write_bits(c, 0, static_cast<int>(n), bits.data()); });
    });
    if (ec)
        throw std::system_error(ec, "write " + std::string(port) + " of " + state_->info.location);
}

namespace {
// The channel number of "AI3" / "AO1" (prefix given) below `count`.
unsigned analog_channel(const detail::modbus_module_state& s, std::string_view channel, std::string_view prefix,
                        unsigned count) {
    if (channel.starts_with(prefix) && count > 0)
        if (const auto i = parse_number(channel.substr(prefix.size()), 0, count - 1))
            return static_cast<unsigned>(*i);
    const std::string what = prefix == "AI" ? "analog inputs" : "analog outputs";
    throw io::invalid_argument("modbus module " + s.info.location + " has no " + what.substr(0, what.size() - 1) +
                               " '" + std::string(channel) + "'; its " + what + " are " +
                               (count == 0 ? std::string("none")
                                           : std::string(prefix) + "0.." + std::string(prefix) + std::to_string(count - 1)));
}
}  // namespace

std::uint16_t modbus_module::read_analog(std::string_view channel) const {
    const auto ch = analog_channel(usable(state_), channel, "AI", state_->model->analog_inputs);
    std::uint16_t v = 0;
    const auto ec = bus_->call([&] {
        return bus_->transact(state_->unit, [&](modbus_t* c) { return modbus_read_input_registers(c, static_cast<int>(ch), 1, &v); });
    });
    if (ec)
        throw std::system_error(ec, "read " + std::string(channel) + " of " + state_->info.location);
    return v;
}

void modbus_module::write_analog(std::string_view channel, std::uint16_t value) {
    const auto ch = analog_channel(usable(state_), channel, "AO", state_->model->analog_outputs);
    const auto ec = bus_->call([&] {
        return bus_->transact(state_->unit, [&](modbus_t* c) { return modbus_write_register(c, static_cast<int>(ch), value); });
    });
    if (ec)
        throw std::system_error(ec, "write " + std::string(channel) + " of " + state_->info.location);
}

void modbus_module::start_polling(std::chrono::milliseconds period) {
    usable(state_);
    if (period < 1ms)
        throw io::invalid_argument("modbus module " + state_->info.location + ": poll period " +
                                   std::to_string(period.count()) + " ms is too short; allowed 1 ms and more");
    {
        const std::lock_guard lock{bus_->mutex};
        if (!state_->polling)
            state_->next = steady::now();  // the first poll takes the levels at once
        state_->polling = true;
        state_->period = period;
        if (std::find(bus_->pollers.begin(), bus_->pollers.end(), state_) == bus_->pollers.end())
            bus_->pollers.push_back(state_);
    }
    bus_->wake.notify_all();
}

void modbus_module::stop_polling() {
    usable(state_);
    const std::lock_guard lock{bus_->mutex};
    state_->polling = false;
}

bool modbus_module::present() const {
    const auto& s = usable(state_);
    const std::lock_guard lock{s.mutex};
    return s.present;
}

std::uint64_t modbus_module::polls() const {
    const auto& s = usable(state_);
    const std::lock_guard lock{s.mutex};
    return s.polls;
}

int modbus_module::fd() const noexcept {
    return state_ ? state_->efd : -1;
}

std::size_t modbus_module::read_events(std::span<modbus_event> out) {
    usable(state_);
    auto& s = *state_;
    const std::lock_guard lock{s.mutex};
    const std::size_t n = std::min(out.size(), s.count);
    for (std::size_t i = 0; i < n; ++i)
        out[i] = s.queue[(s.head + i) % s.queue.size()];
    s.head = (s.head + n) % s.queue.size();
    s.count -= n;
    if (s.count == 0) {
        std::uint64_t v = 0;
        [[maybe_unused]] const auto r = ::read(s.efd, &v, sizeof v);
    }
    return n;
}

std::optional<std::uint64_t> modbus_module::input_levels() const {
    const auto& s = usable(state_);
    const std::lock_guard lock{s.mutex};
    if (!s.have_levels || s.model->inputs == 0)
        return std::nullopt;
    return s.levels;
}

modbus_module::modbus_module(std::shared_ptr<detail::modbus_bus_state> bus,
                             std::shared_ptr<detail::modbus_module_state> state)
    : bus_{std::move(bus)}, state_{std::move(state)} {}

modbus_module modbus_module::duplicate() const {
    const auto& s = usable(state_);
    auto copy = std::make_shared<detail::modbus_module_state>(*s.model, s.unit);
    copy->info = s.info;
    return modbus_module(bus_, std::move(copy));
}

std::uint64_t modbus_module::lost_events() const {
    const auto& s = usable(state_);
    const std::lock_guard lock{s.mutex};
    return s.lost;
}

registration on_modbus_events(event_loop& loop, modbus_module& module,
                              std::function<void(std::span<const modbus_event>, std::error_code)> cb,
                              std::size_t batch) {
    if (!cb)
        throw invalid_argument("on_modbus_events: the callback is empty");
    if (batch == 0)
        throw invalid_argument("on_modbus_events: the batch must hold at least one event");
    auto buffer = std::make_shared<std::vector<modbus_event>>(batch);
    return loop.watch(module.fd(), ready::in, [&loop, &module, buffer, cb = std::move(cb)](readiness r) {
        const auto n = module.read_events(*buffer);
        if (n > 0) {
            cb(std::span<const modbus_event>(buffer->data(), n), {});
            return;
        }
        if (r.hangup()) {
            detail::event_loop_access::unwatch_current(loop);
            cb({}, detail::errno_code(EIO));
        }
    });
}

}  // namespace io
