// SPDX-License-Identifier: MIT
// What iotool's subcommands share: argument parsing with --help and
// examples, card and line lookup with messages that list what is valid, and
// the JSON form of a card.
#pragma once

#include "common/error.hpp"
#include "common/json.hpp"
#include "common/term.hpp"

#include <io/card.hpp>
#include <io/chip.hpp>
#include <io/event_loop.hpp>
#include <io/line_request.hpp>
#include <io/modbus.hpp>
#include <io/modbus_config.hpp>
#include <io/line_config.hpp>
#include <io/serial_settings.hpp>

#include <boost/program_options.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace io::tools::iotool {

namespace po = boost::program_options;
using args = std::vector<std::string>;

/// The texts of a subcommand's --help.
struct help_text {
    const char* usage;        ///< "get [options] CARD LINE..."
    const char* description;  ///< what it does, a few lines
    const char* examples;     ///< one example per line, with a comment
};

/// Parses a subcommand's arguments (args without the subcommand's name).
/// Adds -h/--help; on --help prints the help to stdout and returns nullopt.
/// Bad arguments throw tool_error (exit_usage) with a hint to --help.
/// `hidden` holds the options that positional arguments fill (not shown in help).
std::optional<po::variables_map> parse(const std::string& command, const args& a, po::options_description options,
                                       const po::options_description& hidden,
                                       const po::positional_options_description& positional, const help_text& help);

/// The subcommands.
int run_list(const args&);
int run_info(const args&);
int run_watch(const args&);
int run_get(const args&);
int run_set(const args&);
int run_port(const args&);
int run_monitor(const args&);
int run_serial(const args&);
int run_selftest(const args&);
int run_latency(const args&);
int run_modbus(const args&);

/// Modbus I/O modules named by a URI (modbus-tcp://..., modbus-rtu:...) or
/// by their name in libio's configuration (io::config_dir()/modbus.d), for
/// get, set, port, info and monitor; list and watch show the configured
/// ones (tools/iotool/modbus.cpp).
bool is_modbus_uri(std::string_view key);
/// A URI or a configured module's name. A configuration that cannot be read
/// throws only when key is no card either.
bool is_modbus_module(std::string_view key);
/// The module key names, open; its configured poll period into *poll when
/// it is a configured one. tool_error exit_not_found for an unknown name.
io::modbus_module open_module(const std::string& key, std::optional<std::chrono::milliseconds>* poll = nullptr);
/// monitor's poll period of a module named by URI.
inline constexpr std::chrono::milliseconds default_poll{10};
int modbus_get(const std::string& key, const std::vector<std::string>& lines, bool json);
int modbus_set(const std::string& key, const std::vector<std::pair<std::string, bool>>& wanted);
int modbus_port(const std::string& key, const std::string& port, const std::optional<std::string>& value,
                const std::string& format, bool json);
int modbus_info(const std::string& key, bool json);
struct stream_options;
/// period: --poll; without it the module's configured period, else default_poll.
int modbus_monitor(const std::string& key, const std::vector<std::string>& lines, const stream_options& stream,
                   std::optional<std::chrono::milliseconds> period, io::edge edges);

/// A configured module as list shows it: asked once (opened, and one line read).
struct listed_module {
    io::card_info card;
    bool answering = false;
    std::string error;  ///< why not, when not answering
    std::chrono::milliseconds poll{};
    std::string config;  ///< FILE:LINE
};
/// Every configured module, asked in turn (a silent one costs its timeout x
/// (1 + retries)). A bad configuration throws io::invalid_argument.
std::vector<listed_module> list_modules();
/// The module as a JSON object: the card's members, then state, present,
/// error, poll_ms and config.
void write_module(json_writer& j, const listed_module& m);

/// The configured modules in watch. At the start each is reported "present"
/// (answering) or "absent" (with why); then a module that stops answering
/// (found by polling at its period) is "removed", and one that answers again
/// "added", the words of a card that goes and comes. A module that cannot be
/// opened yet (its serial device absent, or its model to be read from it) is
/// tried again every second, or every poll period when that is longer; that
/// try blocks the loop while the module is asked for its model. report
/// returns false to stop reporting the rest of a batch.
class module_watch final {
public:
    using report_fn = std::function<bool(const char* what, const io::card_info& card, const std::string& error)>;
    module_watch(io::event_loop& loop, report_fn report);
    module_watch(const module_watch&) = delete;
    module_watch& operator=(const module_watch&) = delete;
    ~module_watch();

private:
    bool answering(std::size_t i);
    bool show(std::size_t i, bool present, const std::string& error);
    void start(std::size_t i);
    void retry(std::size_t i);

    io::event_loop& loop_;
    report_fn report_;
    io::modbus_site site_;
    std::vector<std::string> errors_;
    std::vector<bool> shown_;  // reported present
    std::vector<io::registration> events_;
    std::vector<io::registration> retries_;
};

/// The card `key` names (see io::find_card); tool_error exit_not_found
/// (exit_usage when the key matches several cards) listing the cards.
io::card_info find_card(std::string_view key);
/// A card with digital lines.
io::card_info find_digital_card(std::string_view key);

/// The card's line names as ranges: "A0..A7, B0..B7, CL0..CL3, CH4..CH7".
std::string line_ranges(const io::chip& chip);
/// A line given by name or offset; tool_error exit_not_found listing the lines.
unsigned find_line(const io::chip& chip, const io::card_info& card, std::string_view token);
/// The line's name, or its offset when it has none.
std::string line_name(const io::chip& chip, unsigned offset);
/// Whether the line may be an output / an input (by the card's layout; true if unknown).
bool can_output(const io::card_info& card, unsigned offset);
bool can_input(const io::card_info& card, unsigned offset);
/// "OUT0..OUT31" or "A0..A7, ...": the lines of the card that can be outputs (inputs).
std::string output_ranges(const io::chip& chip, const io::card_info& card);
std::string input_ranges(const io::chip& chip, const io::card_info& card);

/// The output options that watch and monitor share: --format text|json
/// (or --json), --count N and --timeout T.
struct stream_options {
    bool json = false;
    bool counting = false;  ///< --count given
    unsigned count = 0;
    std::optional<std::chrono::nanoseconds> timeout;
};
/// Reads them from vm; tool_error exit_usage naming the command on a bad value.
stream_options parse_stream_options(const std::string& command, const po::variables_map& vm);

/// What ends a watch or monitor run besides its own count: SIGINT/SIGTERM
/// (delivered through `signals`) and --timeout. Armed on the loop for the
/// life of the object; both stop the loop.
class stream_stops final {
public:
    stream_stops(io::event_loop& loop, signal_fd& signals, const stream_options& o);
    stream_stops(const stream_stops&) = delete;
    stream_stops& operator=(const stream_stops&) = delete;
    /// Whether --timeout ended the run.
    bool timed_out() const noexcept { return timed_out_; }

private:
    bool timed_out_ = false;
    io::registration on_signal_;
    io::registration on_timeout_;
};

/// A CLOCK_MONOTONIC time in ns as seconds: "1234.000567890".
std::string format_timestamp(std::uint64_t ns);
/// One edge event as monitor prints it, a JSON line (--json) or a text line
/// "SECONDS  LINE  EDGE  #SEQNO", for cards and Modbus modules alike.
void print_edge(const io::edge_event& e, const std::string& name, bool json);

/// Parses a line level: 0/1, low/high, off/on, false/true.
bool parse_level(std::string_view text, std::string_view what);

/// The card as a JSON object (iotool(1), JSON OUTPUT).
void write_card(json_writer& j, const io::card_info& c);
/// The same members without the braces, for objects that add their own.
void write_card_members(json_writer& j, const io::card_info& c);
/// "io", "in" or "out".
const char* port_direction(const io::port_layout& p);

}  // namespace io::tools::iotool

namespace io::tools::iotool {
/// The port's settings as the kernel has them now, read without changing
/// anything; nullopt with `error` set when the port cannot be read.
std::optional<io::serial_settings> current_serial_settings(const std::string& path, std::string& error);
/// The settings as a JSON object (iotool(1), JSON OUTPUT).
void write_serial_settings(json_writer& j, const io::serial_settings& s);
}  // namespace io::tools::iotool
