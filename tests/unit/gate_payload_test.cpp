// SPDX-License-Identifier: MIT
// iogate's Sparkplug B payloads: encoded bytes checked field by field with a
// protobuf reader written here (not the generated code), decoding, and
// garbage that must be refused without a crash.
#include <io/gate/payload.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace gate = io::gate;

namespace {

// One protobuf field: its number, wire type and value (varint or bytes).
struct field {
    unsigned number;
    unsigned wire;
    std::uint64_t varint = 0;
    std::string bytes;
};

std::uint64_t read_varint(const std::string& s, std::size_t& i) {
    std::uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (i >= s.size())
            throw std::runtime_error("truncated varint");
        const auto b = static_cast<unsigned char>(s[i++]);
        v |= std::uint64_t{b & 0x7fU} << shift;
        if ((b & 0x80U) == 0)
            return v;
    }
    throw std::runtime_error("varint too long");
}

std::vector<field> fields(const std::string& s) {
    std::vector<field> out;
    std::size_t i = 0;
    while (i < s.size()) {
        const auto key = read_varint(s, i);
        field f{static_cast<unsigned>(key >> 3), static_cast<unsigned>(key & 7U), 0, {}};
        if (f.wire == 0) {
            f.varint = read_varint(s, i);
        } else if (f.wire == 2) {
            const auto len = read_varint(s, i);
            if (len > s.size() - i)
                throw std::runtime_error("truncated bytes");
            f.bytes = s.substr(i, len);
            i += len;
        } else {
            throw std::runtime_error("unexpected wire type " + std::to_string(f.wire));
        }
        out.push_back(std::move(f));
    }
    return out;
}

bool has(const std::vector<field>& fs, unsigned number) {
    for (const auto& f : fs)
        if (f.number == number)
            return true;
    return false;
}

// The field with that number; throws when there is none.
const field& get(const std::vector<field>& fs, unsigned number) {
    for (const auto& f : fs)
        if (f.number == number)
            return f;
    throw std::runtime_error("no field " + std::to_string(number));
}

}  // namespace

TEST(gate_payload, field_numbers_of_payload_and_metric) {
    gate::payload p;
    p.timestamp_ms = 1700000000123ULL;
    p.seq = 7;
    auto m = gate::make_metric("Lines/A0", gate::datatype::boolean, true, 1700000000100ULL);
    m.properties.push_back({"timestamp_ns", gate::datatype::uint64, std::uint64_t{123456789012ULL}});
    p.metrics.push_back(m);
    p.metrics.push_back(gate::make_metric("Ports/A", gate::datatype::uint8, std::uint64_t{0xa5}));
    p.metrics.push_back(gate::make_metric("bdSeq", gate::datatype::uint64, std::uint64_t{3}));
    p.metrics.push_back(gate::make_metric("Model", gate::datatype::string, std::string{"dio24"}));
    p.metrics.push_back(gate::make_metric("Lines/B0", gate::datatype::boolean, gate::value{}));

    const auto top = fields(gate::encode(p));
    ASSERT_TRUE(has(top, 1));
    EXPECT_EQ(get(top, 1).varint, 1700000000123ULL);
    ASSERT_TRUE(has(top, 3));
    EXPECT_EQ(get(top, 3).varint, 7U);
    std::vector<std::vector<field>> metrics;
    for (const auto& f : top)
        if (f.number == 2) {
            ASSERT_EQ(f.wire, 2U);
            metrics.push_back(fields(f.bytes));
        }
    ASSERT_EQ(metrics.size(), 5U);

    const auto& a0 = metrics[0];
    EXPECT_EQ(get(a0, 1).bytes, "Lines/A0");
    EXPECT_EQ(get(a0, 3).varint, 1700000000100ULL);
    EXPECT_EQ(get(a0, 4).varint, 11U);  // Boolean
    EXPECT_EQ(get(a0, 14).varint, 1U);  // boolean_value
    EXPECT_FALSE(has(a0, 7));      // not null
    ASSERT_TRUE(has(a0, 9));      // properties
    const auto props = fields(get(a0, 9).bytes);
    EXPECT_EQ(get(props, 1).bytes, "timestamp_ns");
    const auto pv = fields(get(props, 2).bytes);
    EXPECT_EQ(get(pv, 1).varint, 8U);  // UInt64
    EXPECT_EQ(get(pv, 4).varint, 123456789012ULL);

    EXPECT_EQ(get(metrics[1], 4).varint, 5U);  // UInt8
    EXPECT_EQ(get(metrics[1], 10).varint, 0xa5U);  // int_value
    EXPECT_EQ(get(metrics[2], 4).varint, 8U);  // UInt64
    EXPECT_EQ(get(metrics[2], 11).varint, 3U);  // long_value
    EXPECT_EQ(get(metrics[3], 4).varint, 12U);  // String
    EXPECT_EQ(get(metrics[3], 15).bytes, "dio24");
    EXPECT_EQ(get(metrics[4], 7).varint, 1U);  // is_null
    EXPECT_FALSE(has(metrics[4], 14));    // and no value
}

TEST(gate_payload, round_trip) {
    gate::payload p;
    p.timestamp_ms = 42;
    p.seq = 255;
    auto m = gate::make_metric("Lines/IN3", gate::datatype::boolean, false, 41);
    m.is_historical = true;
    m.properties.push_back({"Quality", gate::datatype::int32, std::uint64_t{192}});
    m.properties.push_back({"note", gate::datatype::string, gate::value{}});
    p.metrics.push_back(m);
    p.metrics.push_back(gate::make_metric("big", gate::datatype::uint64, std::uint64_t{1} << 40));
    const auto d = gate::decode(gate::encode(p));
    EXPECT_EQ(d.timestamp_ms, 42U);
    EXPECT_EQ(d.seq, 255U);
    ASSERT_EQ(d.metrics.size(), 2U);
    EXPECT_EQ(d.metrics[0].name, "Lines/IN3");
    EXPECT_TRUE(d.metrics[0].is_historical);
    EXPECT_EQ(d.metrics[0].val, gate::value{false});
    ASSERT_NE(d.metrics[0].find_property("Quality"), nullptr);
    EXPECT_EQ(d.metrics[0].find_property("Quality")->val, gate::value{std::uint64_t{192}});
    EXPECT_TRUE(std::holds_alternative<std::monostate>(d.metrics[0].find_property("note")->val));
    EXPECT_EQ(d.metrics[1].val, gate::value{std::uint64_t{1} << 40});
    EXPECT_FALSE(d.seq == std::nullopt);
}

TEST(gate_payload, no_seq_when_not_set) {
    gate::payload p;
    p.metrics.push_back(gate::make_metric("bdSeq", gate::datatype::uint64, std::uint64_t{0}));
    const auto top = fields(gate::encode(p));
    EXPECT_FALSE(has(top, 3));
    EXPECT_FALSE(gate::decode(gate::encode(p)).seq.has_value());
}

TEST(gate_payload, garbage_is_refused_not_crashed_on) {
    EXPECT_THROW(gate::decode("\xff\xff\xff"), gate::decode_error);
    EXPECT_THROW(gate::decode(std::string("\x12\x10", 2)), gate::decode_error);  // metric longer than the data
    // Property keys without values.
    EXPECT_THROW(gate::decode(std::string("\x12\x05\x4a\x03\x0a\x01q", 7)), gate::decode_error);
    std::mt19937 rng{12345};
    unsigned refused = 0;
    for (int i = 0; i < 1000; ++i) {
        std::string s(rng() % 64, '\0');
        for (auto& c : s)
            c = static_cast<char>(rng());
        try {
            (void)gate::decode(s);
        } catch (const gate::decode_error&) {
            ++refused;
        }
    }
    EXPECT_GT(refused, 500U);
}
