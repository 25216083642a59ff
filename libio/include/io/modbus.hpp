// SPDX-License-Identifier: MIT
#pragma once

#include <io/card.hpp>
#include <io/event_loop.hpp>
#include <io/export.hpp>
#include <io/line_config.hpp>
#include <io/serial_settings.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace io {

/// How a Modbus bus is reached.
enum class modbus_transport {
    rtu,  ///< Modbus RTU on a serial port (RS-485, RS-232, USB serial)
    tcp,  ///< Modbus/TCP
};

/// A bus and, optionally, one module on it, as a URI names them:
///
///     modbus-rtu:DEVICE?baud=9600&parity=none&stop=1&mode=rs485&unit=247&model=410
///     modbus-tcp://HOST[:PORT]?unit=1&model=430
///
/// DEVICE is any path of a serial port, a card's stable name included
/// (/dev/serial/by-card/pci:0000:03:00.0/port1). Parameters, all optional:
/// baud (50 to 20000000, default 9600), parity (none, even, odd; default
/// none), stop (1 or 2, default 1), mode (rs232, rs422, rs485; default
/// rs232) for RTU only, whose characters always have 8 data bits; for both unit (1 to 247),
/// model (see modbus_models()), timeout (the response timeout in ms, 1 to
/// 10000, default 500) and retries (times a request that got no valid answer
/// is sent again, 0 to 10, default 2). PORT defaults to 502.
struct modbus_address {
    modbus_transport transport = modbus_transport::tcp;
    std::string device;          ///< rtu: the serial port's path
    std::string host;            ///< tcp: host name or address
    std::uint16_t port = 502;    ///< tcp: port
    serial_settings serial = serial_settings{}.set_baud(9600);  ///< rtu: the line settings
    unsigned unit = 0;           ///< the module's unit id, 1 to 247; 0 when the URI gives none
    std::string model;           ///< the module's model ("410"); empty when the URI gives none
    std::chrono::milliseconds timeout{500};  ///< response timeout per request
    unsigned retries = 2;        ///< resends of a request that got no valid answer

    friend bool operator==(const modbus_address&, const modbus_address&) = default;
};

/// Parses a modbus-rtu: or modbus-tcp:// URI.
/// \throws io::invalid_argument naming what was wrong and what is allowed
///         (an unknown scheme or parameter, a value out of range, an unknown
///         model).
LIBIO_EXPORT modbus_address parse_modbus_uri(std::string_view uri);

/// The address as a URI that parse_modbus_uri() reads back to the same
/// value; parameters at their default are left out.
LIBIO_EXPORT std::string to_string(const modbus_address& a);

/// A model of Modbus I/O module: its digital lines, analog channels and the
/// function codes it answers. Discrete inputs are read from address 0
/// (function 02), coils from address 0 (01 to read, 05 to write one, 0F to
/// write several), analog inputs are input registers from 0 (04), analog
/// outputs holding registers from 0 (06 to write; they cannot be read back).
struct modbus_model {
    std::string_view name;            ///< "410"
    std::string_view vendor;          ///< "Sealevel"
    std::string_view description;     ///< "SeaI/O-410: 16 inputs, 16 outputs"
    unsigned inputs = 0;              ///< discrete inputs, lines DI0..
    unsigned outputs = 0;             ///< coils, lines DO0..
    std::string_view function_codes;  ///< as the vendor lists them: "01 02 05 0F"
    unsigned analog_inputs = 0;       ///< input registers, channels AI0..
    unsigned analog_outputs = 0;      ///< holding registers, channels AO0..
};

/// The models libio knows. The vendor codes of the 462/463 are not driven.
LIBIO_EXPORT std::span<const modbus_model> modbus_models() noexcept;

/// The model called `name`.
/// \throws io::invalid_argument listing the known models when there is none.
LIBIO_EXPORT const modbus_model& find_modbus_model(std::string_view name);

/// What a module answered instead of a valid reply.
enum class modbus_errc {
    illegal_function = 1,      ///< exception 01
    illegal_data_address = 2,  ///< exception 02
    illegal_data_value = 3,    ///< exception 03
    server_device_failure = 4, ///< exception 04
    acknowledge = 5,           ///< exception 05
    server_device_busy = 6,    ///< exception 06
    negative_acknowledge = 7,  ///< exception 07
    memory_parity_error = 8,   ///< exception 08
    gateway_path_unavailable = 10,   ///< exception 0A
    gateway_target_no_response = 11, ///< exception 0B
    bad_crc = 256,             ///< an RTU reply with a wrong CRC
    bad_reply = 257,           ///< a reply that is not the answer to the request
};

/// The category of modbus_errc. A module that does not answer in time is
/// std::errc::timed_out (system category); a TCP connection that fails is
/// its errno (ECONNREFUSED, ...).
LIBIO_EXPORT const std::error_category& modbus_category() noexcept;
inline std::error_code make_error_code(modbus_errc e) noexcept {
    return {static_cast<int>(e), modbus_category()};
}

namespace detail {
struct modbus_access;
struct modbus_bus_state;
struct modbus_module_state;
}  // namespace detail

/// One Modbus bus: a Modbus/TCP connection or a serial line for Modbus RTU,
/// whose requests go out one at a time (on RTU with the 3.5 character times
/// of silence the protocol requires between frames), with a thread of its
/// own that polls the modules that poll.
///
/// libmodbus blocks while it waits for a reply (up to the timeout, times
/// 1 + retries). A poll waits in the bus's thread, never in the caller's
/// event loop, so a silent module stalls nothing but its own bus; a call
/// such as get() sends its request from the caller's thread, once the bus
/// is free, and blocks that thread until the reply (no hand-over between
/// threads and no allocation on the way).
///
/// An RTU bus opens its serial port with io::serial_port (exclusive
/// access, the settings validated and applied by libio, RS-485 mode through
/// the driver, low latency where the driver has it), and restores it when
/// the bus is destroyed. When the serial device goes away (a USB adapter
/// unplugged, a card removed: the tty hangs up), the bus closes the port and
/// its requests fail with ENODEV; each later request opens the port again by
/// its path, with the same settings, and fails with the error of that open
/// (ENOENT while the device node is absent) until the device is back. A
/// polled module reports this as `gone` and `back` like any silence. A TCP
/// bus connects on first use and again after a failure.
///
/// Move-only. Modules keep what they need of the bus alive.
class LIBIO_EXPORT modbus_bus final {
public:
    /// Opens the bus an address names (unit and model are ignored).
    /// \throws the errors of io::serial_port for RTU; io::invalid_argument
    ///         for a serial setting RTU cannot use (mark or space parity).
    explicit modbus_bus(const modbus_address& address);
    /// The same, from a URI (parse_modbus_uri()).
    explicit modbus_bus(std::string_view uri);
    ~modbus_bus();
    modbus_bus(modbus_bus&&) noexcept;
    modbus_bus& operator=(modbus_bus&&) noexcept;
    modbus_bus(const modbus_bus&) = delete;
    modbus_bus& operator=(const modbus_bus&) = delete;

    const modbus_address& address() const;

    /// The units from `first` to `last` (1 to 247) that answer: each is sent
    /// one request (read discrete input 0, function 02) without retries; a
    /// valid reply or an exception reply counts, no reply or a bad one does
    /// not. It takes up to the timeout per absent unit: scan with a short
    /// timeout in the URI (timeout=50).
    /// \throws io::invalid_argument when the range is not within 1 to 247.
    std::vector<unsigned> scan(unsigned first = 1, unsigned last = 247);
    /// The same, calling progress(unit, found) on the caller's thread before
    /// each unit is asked, with the number of units found so far (for a
    /// progress display). Between two units the bus serves its other
    /// requests and polls.
    std::vector<unsigned> scan(unsigned first, unsigned last,
                               const std::function<void(unsigned unit, std::size_t found)>& progress);

    /// The model of the SeaI/O module at `unit`, read with Sealevel's Get
    /// Config request (function 0x45), with the bus's timeout and retries.
    /// \throws std::system_error as a module's calls do when it does not
    ///         answer; std::errc::not_supported naming the model code when
    ///         the module is not one of modbus_models() (a code of 0x00: a
    ///         model outside the SeaI/O 4xx series, which needs the model
    ///         given); io::invalid_argument for a unit outside 1 to 247.
    const modbus_model& identify(unsigned unit);

private:
    friend class modbus_module;
    std::shared_ptr<detail::modbus_bus_state> state_;
};

/// A change seen by polling a module.
struct modbus_event {
    enum class kind {
        edge,  ///< an input changed between two polls
        gone,  ///< a poll got no valid answer (error says why); the module is absent
        back,  ///< a poll was answered again after `gone`
    };
    kind what = kind::edge;
    unsigned line = 0;           ///< edge: the input's offset (DI0 is 0)
    edge change = edge::none;    ///< edge: rising or falling
    /// CLOCK_MONOTONIC when the poll that saw the change completed (not when
    /// the input changed: that happened some time in the poll period before).
    std::uint64_t timestamp_ns = 0;
    std::uint64_t seqno = 0;       ///< position among all events of the module, from 1
    std::uint64_t line_seqno = 0;  ///< edge: position among this line's edges, from 1
    std::error_code error;         ///< gone: why (std::errc::timed_out, a modbus_errc, an errno)
};

/// A Modbus I/O module on a bus, with the vocabulary of a card: lines
/// numbered through its ports in order (inputs DI0.. first, then outputs
/// DO0..), ports "DI" and "DO" read and written as one integer, and change
/// of state by polling.
///
/// Errors: calls throw std::system_error whose code is std::errc::timed_out
/// (no answer), a modbus_errc (an exception reply, a bad CRC) or the errno
/// of the connection, and whose message names the module and the request
/// ("read DI of modbus-tcp://rack3:502?unit=1: ..."). get and set also come
/// as noexcept overloads taking a std::error_code. A bad line or port name
/// throws io::invalid_argument listing what the module has.
///
/// Every request of a module waits its turn on the bus: a call such as get()
/// blocks the caller while a request of another caller or a poll is on the
/// wire, then while its own is sent and until the reply came or the timeout
/// passed (up to timeout x (1 + retries)).
///
/// Presence: while polling, a poll that gets no valid answer (after the
/// retries) queues a `gone` event and the next answered poll a `back` event
/// followed by an edge for every input that differs from before it went.
/// The object itself is used from one thread.
class LIBIO_EXPORT modbus_module final {
public:
    /// A module at `unit` (1 to 247) of a given model on a bus.
    /// \throws io::invalid_argument for a bad unit or an unknown model.
    modbus_module(modbus_bus& bus, unsigned unit, std::string_view model);
    /// A module at `unit` whose model is read from it (modbus_bus::identify).
    modbus_module(modbus_bus& bus, unsigned unit);
    /// A module on a bus of its own: the URI must give the unit; without a
    /// model the model is read from the module (modbus_bus::identify).
    explicit modbus_module(std::string_view uri);
    ~modbus_module();
    modbus_module(modbus_module&&) noexcept;
    modbus_module& operator=(modbus_module&&) noexcept;
    modbus_module(const modbus_module&) = delete;
    modbus_module& operator=(const modbus_module&) = delete;

    /// The module as a card: model "seaio-410", vendor, location (the URI
    /// with the unit and model), driver "modbus", ports DI and DO,
    /// num_lines, cos "poll".
    const card_info& info() const;
    const modbus_model& model() const;
    unsigned unit() const;

    /// The offset of a line by name ("DI3", "DO0").
    /// \throws io::invalid_argument listing the module's lines.
    unsigned find_line(std::string_view name) const;
    /// The name of the line at `offset`.
    std::string line_name(unsigned offset) const;

    /// Reads one line (an input with function 02, an output with 01).
    bool get(unsigned offset) const;
    bool get(unsigned offset, std::error_code& ec) const noexcept;
    /// Drives one output (function 05).
    /// \throws io::invalid_argument when the line is an input.
    void set(unsigned offset, bool value);
    void set(unsigned offset, bool value, std::error_code& ec) noexcept;
    /// Reads port "DI" or "DO" whole; bit i is line i of the port.
    std::uint64_t read_port(std::string_view port) const;
    /// Writes port "DO" whole (function 0F).
    void write_port(std::string_view port, std::uint64_t value);

    /// Reads analog input "AI0".."AIn" (function 04): the converter's raw
    /// 16-bit value, whose scale is the module's A/D configuration (set with
    /// the vendor's tools; libio does not change it).
    /// \throws io::invalid_argument listing the module's analog inputs.
    std::uint16_t read_analog(std::string_view channel) const;
    /// Writes analog output "AO0".."AOn" (function 06), a raw 16-bit value.
    /// \throws io::invalid_argument listing the module's analog outputs.
    void write_analog(std::string_view channel, std::uint16_t value);

    /// Starts polling the inputs every `period` (at least 1 ms): the poll
    /// is queued on the bus's thread on absolute deadlines; a tick missed
    /// because the bus was busy is not replayed. The first poll only takes
    /// the inputs' levels (no edge events). Polling again with another
    /// period changes the period.
    void start_polling(std::chrono::milliseconds period);
    /// Stops polling; events already queued stay.
    void stop_polling();
    /// Whether the last poll was answered (true before the first poll).
    bool present() const;
    /// The inputs' levels as the last answered poll read them (bit i is
    /// DIi), without a request; nullopt before the first answered poll or
    /// for a module without inputs. Edges still queued are already in it.
    std::optional<std::uint64_t> input_levels() const;
    /// How many polls have completed, answered or not: with present(), the
    /// state of a module whose first poll has not been seen yet.
    std::uint64_t polls() const;

    /// Readable while events are queued (an eventfd), for event loops.
    int fd() const noexcept;
    /// Takes queued events into out without blocking; returns how many.
    std::size_t read_events(std::span<modbus_event> out);
    /// Events dropped because the queue (1024 events) was full when they
    /// were found; seqno shows where.
    std::uint64_t lost_events() const;

    /// A second object for the same module on the same bus, to be used
    /// from another thread (one object per thread): its requests wait their
    /// turn on the bus as any caller's do; it has its own polling and events
    /// (none until it polls). What a program uses to send requests that may
    /// block up to the bus's timeout away from its event loop.
    modbus_module duplicate() const;

private:
    friend struct detail::modbus_access;
    modbus_module(std::shared_ptr<detail::modbus_bus_state> bus, std::shared_ptr<detail::modbus_module_state> state);
    std::shared_ptr<detail::modbus_bus_state> bus_;
    std::shared_ptr<detail::modbus_module_state> state_;
};

/// Calls cb from the loop with each batch of the module's events (read into
/// a buffer of `batch` events made once here). The module must outlive the
/// registration. Errors of the module itself arrive as `gone` events; cb
/// gets an error_code only if its eventfd fails, and then the module is not
/// watched any more.
LIBIO_EXPORT registration on_modbus_events(event_loop& loop, modbus_module& module,
                                           std::function<void(std::span<const modbus_event>, std::error_code)> cb,
                                           std::size_t batch = 64);

}  // namespace io

template <>
struct std::is_error_code_enum<io::modbus_errc> : std::true_type {};
