// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

/// iogate's Sparkplug B pieces: payloads, the edge node's state machine, the
/// MQTT transport, the configuration and the cards as Sparkplug devices.
namespace io::gate {

/// Sparkplug B datatype codes (the numbers travel on the wire).
enum class datatype : std::uint32_t {
    unknown = 0,
    int32 = 3,
    uint8 = 5,
    uint32 = 7,
    uint64 = 8,
    boolean = 11,
    string = 12,
};

/// Values of the "Quality" property.
enum class quality : std::uint32_t { bad = 0, good = 192, stale = 500 };

/// A metric's or property's value: none (is_null), Boolean, an integer of
/// any width up to 64 bits (int_value or long_value on the wire), or String.
using value = std::variant<std::monostate, bool, std::uint64_t, std::string>;

struct property {
    std::string key;
    datatype type = datatype::unknown;
    value val;  ///< monostate: the property is null
};

struct metric {
    std::string name;
    std::optional<std::uint64_t> alias;
    std::optional<std::uint64_t> timestamp_ms;  ///< UTC ms since the epoch
    datatype type = datatype::unknown;
    bool is_historical = false;
    value val;  ///< monostate: is_null on the wire
    std::vector<property> properties;

    bool is_null() const noexcept { return std::holds_alternative<std::monostate>(val); }
    /// The property with that key, or nullptr.
    const property* find_property(std::string_view key) const noexcept;
};

struct payload {
    std::optional<std::uint64_t> timestamp_ms;
    std::vector<metric> metrics;
    std::optional<std::uint64_t> seq;
};

/// A payload that is not a Sparkplug B protobuf message (truncated, not
/// protobuf at all, a value of the wrong kind for its datatype).
class decode_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// The protobuf bytes of a payload.
std::string encode(const payload& p);
/// The payload those bytes hold; throws decode_error.
payload decode(std::string_view bytes);

/// A metric with a value and datatype.
metric make_metric(std::string name, datatype type, value v, std::optional<std::uint64_t> timestamp_ms = {});

/// UTC now in ms since the epoch.
std::uint64_t utc_now_ms() noexcept;

}  // namespace io::gate
