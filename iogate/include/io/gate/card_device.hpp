// SPDX-License-Identifier: MIT
#pragma once

#include <io/card.hpp>
#include <io/chip.hpp>
#include <io/event_loop.hpp>
#include <io/gate/node.hpp>
#include <io/line_request.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace io::gate {

/// Which lines of a card a device publishes.
struct card_options {
    /// Line names to publish; empty: every line that can be an input.
    std::vector<std::string> lines;
    /// Lines DCMD may write; they are requested as outputs, driven to
    /// `initial_output` when taken (the GPIO uAPI sets an output's level
    /// when it is requested).
    std::vector<std::string> writable;
    bool initial_output = false;
    /// Writable lines driven to these levels when the broker is lost
    /// (opt-in; by default outputs hold).
    std::map<std::string, bool> safe_state;
    std::string consumer = "iogate";  ///< the owner gpioinfo shows
};

/// A line a lines_device publishes.
struct published_line {
    unsigned offset = 0;
    std::string name;             ///< "A0": the metric is "Lines/A0"
    bool writable = false;        ///< an output of the request that DCMD may write
    bool held_elsewhere = false;  ///< not in the request: another process holds it
    /// A writable line's level when the broker is lost; none: it holds.
    std::optional<bool> safe_level{};
};

/// Lines of a request someone else holds (an application that owns its
/// lines attaches the gateway to them) as a Sparkplug device: the metrics,
/// edge handling and writes of card_device, without taking any line.
class lines_device final : public device {
public:
    /// `request` must hold every line not held_elsewhere and outlive this
    /// object (or be null when every line is held elsewhere); `ports` are
    /// published when all their lines are published inputs of the request.
    lines_device(line_request* request, std::vector<published_line> lines, const std::vector<port>& ports,
                 event_loop& loop, std::function<void(std::vector<metric>)> on_data,
                 std::function<void(std::error_code)> on_gone);
    ~lines_device() override;
    lines_device(const lines_device&) = delete;
    lines_device& operator=(const lines_device&) = delete;

    std::vector<metric> birth_metrics() override;
    write_status write(const metric& m, std::vector<metric>& confirmed) override;
    /// Drives the lines that have a safe_level to it.
    void connection_lost() override;
    /// Names of the lines another process holds.
    std::vector<std::string> held_elsewhere() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// A card's digital lines as a Sparkplug device, on libio: "Lines/NAME"
/// (Boolean), "Ports/NAME" (UInt8 up to 8 lines, else UInt64) for ports
/// whose lines are all published inputs, and "Lost events" (UInt64).
/// Lines that another process holds are not taken: they show with is_null
/// and Quality BAD. Each edge becomes one metric with the kernel's
/// timestamp in UTC ms and its exact timestamp_ns, seqno and line_seqno as
/// properties; one batch of events is one call of on_data.
class card_device final : public device {
public:
    /// Requests the lines; throws io::invalid_argument for names the card
    /// lacks, std::system_error when the chip cannot be opened.
    card_device(const card_info& card, const card_options& options, event_loop& loop,
                std::function<void(std::vector<metric>)> on_data, std::function<void(std::error_code)> on_gone);
    ~card_device() override;
    card_device(const card_device&) = delete;
    card_device& operator=(const card_device&) = delete;

    std::vector<metric> birth_metrics() override;
    write_status write(const metric& m, std::vector<metric>& confirmed) override;
    void connection_lost() override { lines_->connection_lost(); }

    /// Names of the published lines another process holds.
    std::vector<std::string> held_elsewhere() const { return lines_->held_elsewhere(); }

private:
    std::optional<line_request> request_;
    std::unique_ptr<lines_device> lines_;
};

/// A metric's Quality property.
property quality_property(quality q);

/// The metrics every device of lines publishes, one copy for cards and
/// remote modules. "Lines/NAME", Boolean, with Quality GOOD; without a
/// level (a line another process holds) is_null and Quality BAD.
metric line_metric(std::string_view name, std::optional<bool> level, std::optional<std::uint64_t> ts);
/// "Ports/NAME": UInt8 for up to 8 lines, else UInt64.
metric port_metric(std::string_view name, std::size_t lines, std::uint64_t value, std::optional<std::uint64_t> ts);
/// An edge's exact time and position as the line metric's properties
/// (timestamp_ns: CLOCK_MONOTONIC; seqno; line_seqno).
void add_edge_properties(metric& m, std::uint64_t timestamp_ns, std::uint64_t seqno, std::uint64_t line_seqno);

/// What a DCMD metric asks of a device's lines, after the checks every
/// device of lines makes (one copy): "Lines/NAME" of a published line that
/// is writable and not held elsewhere, with a Boolean value. Metrics in
/// `read_only` (ports, "Lost events") are not_writable, other names
/// unknown_metric. On done, `line` is the line in `lines` and `level` the
/// level to drive.
struct line_write {
    device::write_status status = device::write_status::unknown_metric;
    const published_line* line = nullptr;
    bool level = false;
};
line_write check_line_write(const metric& m, const std::vector<const published_line*>& lines,
                            const std::vector<std::string>& read_only);

/// CLOCK_REALTIME minus CLOCK_MONOTONIC now, in ns: what turns an edge's
/// kernel timestamp into UTC (taken once per batch, so that the edges of a
/// batch keep their exact distances).
std::int64_t monotonic_to_utc_offset_ns() noexcept;
/// A CLOCK_MONOTONIC timestamp (an edge's) in UTC ms since the epoch.
std::uint64_t monotonic_to_utc_ms(std::uint64_t monotonic_ns, std::int64_t offset_ns) noexcept;

}  // namespace io::gate
