// SPDX-License-Identifier: MIT
#pragma once

#include <io/event_loop.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace io::gate {

/// Modbus exception codes (Modbus Application Protocol V1.1b3, 7).
enum class modbus_exception : std::uint8_t {
    none = 0,
    illegal_function = 0x01,
    illegal_data_address = 0x02,
    illegal_data_value = 0x03,
    server_device_failure = 0x04,
    gateway_path_unavailable = 0x0A,
    gateway_target_failed = 0x0B,
};

/// How a unit reaches its lines: a card's line request, or a test's table.
/// Lines are named by their offset on the card. Calls never block.
class line_access {
public:
    virtual ~line_access() = default;
    /// The levels of `lines`, bit i for lines[i] (at most 64 lines).
    virtual std::uint64_t get(std::span<const unsigned> lines, std::error_code& ec) = 0;
    /// Drives `lines` to the bits of `bits` (bit i for lines[i]).
    virtual void set(std::span<const unsigned> lines, std::uint64_t bits, std::error_code& ec) = 0;
    /// Edges seen on the unit's inputs and edges the kernel dropped.
    virtual std::uint64_t edges_seen() const = 0;
    virtual std::uint64_t lost_events() const = 0;
};

/// One line a unit serves.
struct unit_line {
    unsigned offset = 0;
    std::string name;       ///< "A0"
    bool output = false;    ///< a coil (an output iogate holds), else a discrete input
    bool writable = false;  ///< Modbus clients may write it (outputs only)
};

/// A port a unit serves: its lines in bit order (offsets among the unit's lines).
struct unit_port {
    std::string name;               ///< "A"
    std::vector<unsigned> offsets;  ///< bit i is the line at offsets[i]
};

/// A unit's register map, built from its lines and ports:
///
/// - discrete inputs 0..: the input lines, in offset order;
/// - coils 0..: the output lines, in offset order;
/// - input registers 0-3: edges seen, 4-7: events lost (64-bit counters,
///   most significant word first); 8..: every port whose lines are all
///   served, in the given order, one register per 16 lines (least
///   significant register first), bit i = the port's line i;
/// - holding registers 0..: the ports whose lines are all outputs, laid out
///   the same way; a register is writable when all its lines are.
///
/// Writes to a coil or register that is not writable are refused with
/// exception 02 (illegal data address), like an address out of range.
class register_map final {
public:
    /// A register of up to 16 lines.
    struct word {
        std::string name;             ///< "A", or "A[1]" for a port's second register
        std::vector<unsigned> lines;  ///< offsets, bit order
        bool writable = false;
    };

    register_map(std::vector<unit_line> lines, const std::vector<unit_port>& ports, line_access& access);

    /// Answers one request PDU (function code and data) into `out` (at
    /// least 253 bytes); returns the response PDU's length. Malformed and
    /// refused requests get exception responses, never an error.
    std::size_t answer(std::span<const std::uint8_t> pdu, std::span<std::uint8_t> out);

    const std::vector<unit_line>& discrete_inputs() const noexcept { return inputs_; }
    const std::vector<unit_line>& coils() const noexcept { return coils_; }
    /// Input registers from 8 on, and the holding registers.
    const std::vector<word>& port_registers() const noexcept { return in_words_; }
    const std::vector<word>& holding_registers() const noexcept { return hold_words_; }
    /// How many writes were refused (exception 02 on a write function).
    std::uint64_t refused_writes() const noexcept { return refused_; }

    static constexpr unsigned counter_registers = 8;

private:
    modbus_exception read_bits(const std::vector<unit_line>& table, unsigned addr, unsigned count, std::uint8_t* out);
    modbus_exception read_words(bool holding, unsigned addr, unsigned count, std::uint8_t* out);
    modbus_exception write_coils(unsigned addr, unsigned count, const std::uint8_t* bits);
    modbus_exception write_words(unsigned addr, unsigned count, const std::uint8_t* data);

    std::vector<unit_line> inputs_;
    std::vector<unit_line> coils_;
    std::vector<word> in_words_;
    std::vector<word> hold_words_;
    line_access& access_;
    std::uint64_t refused_ = 0;
    std::vector<unsigned> scratch_;
};

/// Where the server listens and how it limits its clients.
struct modbus_server_options {
    std::string listen = "127.0.0.1";  ///< an IPv4 or IPv6 address
    std::uint16_t port = 502;          ///< 0: any free port (tests)
    unsigned max_connections = 8;      ///< one more is accepted and closed at once
    std::chrono::milliseconds idle_timeout{60000};  ///< a connection silent this long is closed
};

/// What the server has seen since it started.
struct modbus_server_stats {
    std::uint64_t accepted = 0;      ///< connections taken
    std::uint64_t refused = 0;       ///< connections closed at once: over max_connections
    std::uint64_t idle_closed = 0;   ///< connections closed after idle_timeout
    std::uint64_t requests = 0;      ///< frames answered
    std::uint64_t exceptions = 0;    ///< of which with an exception response
    std::uint64_t bad_frames = 0;    ///< MBAP header with a protocol ID other than 0 (garbage)
    std::uint64_t oversized = 0;     ///< MBAP length over 254 (or under 2)
    std::uint64_t truncated = 0;     ///< connections that ended inside a frame
};

/// A Modbus/TCP server (MBAP framing, Modbus Messaging on TCP/IP
/// Implementation Guide V1.0b) on an io::event_loop: non-blocking sockets,
/// requests answered in the loop's thread, one register_map per unit ID.
/// A frame whose header is garbage (protocol ID not 0, length out of range)
/// closes its connection, since the stream cannot be resynchronised; it is
/// counted and logged (at most a few lines per 10 s). Modbus/TCP has no
/// authentication: listen on loopback, or limit who reaches the port.
class modbus_server final {
public:
    /// Binds and listens; throws std::system_error (address in use, bad
    /// address: io::invalid_argument).
    modbus_server(const modbus_server_options& options, event_loop& loop);
    ~modbus_server();
    modbus_server(const modbus_server&) = delete;
    modbus_server& operator=(const modbus_server&) = delete;

    /// Serves unit `id` (1..247) with `map` (not owned; nullptr: the unit is
    /// configured but its card is absent: exception 0B). Unknown unit IDs get
    /// exception 0A.
    void set_unit(std::uint8_t id, register_map* map);
    void remove_unit(std::uint8_t id);

    /// The port bound (useful with port 0).
    std::uint16_t port() const noexcept;
    const modbus_server_stats& stats() const noexcept;
    std::size_t connections() const noexcept;

    /// Called for log lines; default: none.
    std::function<void(const std::string&)> log;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace io::gate
