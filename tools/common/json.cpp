// SPDX-License-Identifier: MIT
#include "json.hpp"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace io::tools {

void write_json_string(std::ostream& out, std::string_view s) {
    out << '"';
    for (const char c : s) {
        switch (c) {
        case '"': out << "\\\""; break;
        case '\\': out << "\\\\"; break;
        case '\n': out << "\\n"; break;
        case '\r': out << "\\r"; break;
        case '\t': out << "\\t"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
                out << buf;
            } else {
                out << c;
            }
        }
    }
    out << '"';
}

void json_writer::before_value() {
    if (after_key_) {
        after_key_ = false;
        return;
    }
    if (!stack_.empty()) {
        if (stack_.back().object)
            throw std::logic_error("json_writer: a value in an object needs a key");
        if (!stack_.back().first)
            out_ << ',';
        stack_.back().first = false;
    }
}

json_writer& json_writer::begin_object() {
    before_value();
    out_ << '{';
    stack_.push_back({true});
    return *this;
}

json_writer& json_writer::end_object() {
    if (stack_.empty() || !stack_.back().object || after_key_)
        throw std::logic_error("json_writer: end_object without an open object");
    stack_.pop_back();
    out_ << '}';
    return *this;
}

json_writer& json_writer::begin_array() {
    before_value();
    out_ << '[';
    stack_.push_back({false});
    return *this;
}

json_writer& json_writer::end_array() {
    if (stack_.empty() || stack_.back().object)
        throw std::logic_error("json_writer: end_array without an open array");
    stack_.pop_back();
    out_ << ']';
    return *this;
}

json_writer& json_writer::key(std::string_view k) {
    if (stack_.empty() || !stack_.back().object || after_key_)
        throw std::logic_error("json_writer: a key outside an object");
    if (!stack_.back().first)
        out_ << ',';
    stack_.back().first = false;
    write_json_string(out_, k);
    out_ << ':';
    after_key_ = true;
    return *this;
}

json_writer& json_writer::value(std::string_view s) {
    before_value();
    write_json_string(out_, s);
    return *this;
}

json_writer& json_writer::value(bool b) {
    before_value();
    out_ << (b ? "true" : "false");
    return *this;
}

json_writer& json_writer::value(double d) {
    before_value();
    if (!std::isfinite(d)) {
        out_ << "null";
        return *this;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", d);
    out_ << buf;
    return *this;
}

json_writer& json_writer::value(std::nullptr_t) {
    before_value();
    out_ << "null";
    return *this;
}

json_writer& json_writer::signed_value(std::int64_t v) {
    before_value();
    out_ << v;
    return *this;
}

json_writer& json_writer::unsigned_value(std::uint64_t v) {
    before_value();
    out_ << v;
    return *this;
}

void json_writer::end_document() {
    if (!stack_.empty())
        throw std::logic_error("json_writer: document ended inside an object or array");
    out_ << '\n';
    out_.flush();
}

}  // namespace io::tools
