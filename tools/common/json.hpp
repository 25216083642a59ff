// SPDX-License-Identifier: MIT
// A small streaming JSON writer: compact output, one document per call of
// the caller's choosing (a whole report, or one JSON Lines record).
//
//   json_writer j{std::cout};
//   j.begin_object().key("name").value("iocard0").key("lines").value(24U).end_object();
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace io::tools {

/// Writes s as a JSON string literal, quotes included.
void write_json_string(std::ostream& out, std::string_view s);

class json_writer final {
public:
    explicit json_writer(std::ostream& out) : out_{out} {}

    json_writer& begin_object();
    json_writer& end_object();
    json_writer& begin_array();
    json_writer& end_array();
    /// The key of the next member; only inside an object.
    json_writer& key(std::string_view k);

    json_writer& value(std::string_view s);
    json_writer& value(const char* s) { return value(std::string_view{s}); }
    json_writer& value(const std::string& s) { return value(std::string_view{s}); }
    json_writer& value(bool b);
    json_writer& value(double d);
    json_writer& value(std::nullptr_t);
    template <typename T>
        requires(std::is_integral_v<T> && !std::is_same_v<T, bool>)
    json_writer& value(T v) {
        if constexpr (std::is_signed_v<T>)
            return signed_value(static_cast<std::int64_t>(v));
        else
            return unsigned_value(static_cast<std::uint64_t>(v));
    }

    /// key(k).value(v) in one call.
    template <typename T>
    json_writer& member(std::string_view k, const T& v) {
        key(k);
        return value(v);
    }

    /// Ends a document: a newline, and the stream flushed (JSON Lines readers
    /// see each record at once).
    void end_document();

private:
    json_writer& signed_value(std::int64_t v);
    json_writer& unsigned_value(std::uint64_t v);
    void before_value();

    struct level {
        bool object;
        bool first = true;
    };
    std::ostream& out_;
    std::vector<level> stack_;
    bool after_key_ = false;
};

}  // namespace io::tools
