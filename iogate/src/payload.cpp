// SPDX-License-Identifier: MIT
#include <io/gate/payload.hpp>

#include "sparkplug_b.pb.h"

#include <chrono>
#include <limits>

namespace io::gate {

namespace {

template <typename Wire>
void put_value(Wire& w, datatype type, const value& v) {
    if (std::holds_alternative<bool>(v)) {
        w.set_boolean_value(std::get<bool>(v));
    } else if (std::holds_alternative<std::uint64_t>(v)) {
        const auto n = std::get<std::uint64_t>(v);
        // Types of up to 32 bits travel in int_value, the wider ones in long_value.
        if (type == datatype::uint64 || n > std::numeric_limits<std::uint32_t>::max())
            w.set_long_value(n);
        else
            w.set_int_value(static_cast<std::uint32_t>(n));
    } else if (std::holds_alternative<std::string>(v)) {
        w.set_string_value(std::get<std::string>(v));
    }
}

template <typename Wire>
value get_value(const Wire& w) {
    switch (w.value_case()) {
    case Wire::kBooleanValue:
        return w.boolean_value();
    case Wire::kIntValue:
        return std::uint64_t{w.int_value()};
    case Wire::kLongValue:
        return std::uint64_t{w.long_value()};
    case Wire::kStringValue:
        return w.string_value();
    default:
        return std::monostate{};
    }
}

}  // namespace

const property* metric::find_property(std::string_view key) const noexcept {
    for (const auto& p : properties)
        if (p.key == key)
            return &p;
    return nullptr;
}

std::string encode(const payload& p) {
    wire::payload w;
    if (p.timestamp_ms)
        w.set_timestamp(*p.timestamp_ms);
    if (p.seq)
        w.set_seq(*p.seq);
    for (const auto& m : p.metrics) {
        auto* wm = w.add_metrics();
        if (!m.name.empty())
            wm->set_name(m.name);
        if (m.alias)
            wm->set_alias(*m.alias);
        if (m.timestamp_ms)
            wm->set_timestamp(*m.timestamp_ms);
        wm->set_datatype(static_cast<std::uint32_t>(m.type));
        if (m.is_historical)
            wm->set_is_historical(true);
        if (m.is_null())
            wm->set_is_null(true);
        else
            put_value(*wm, m.type, m.val);
        if (!m.properties.empty()) {
            auto* set = wm->mutable_properties();
            for (const auto& prop : m.properties) {
                set->add_keys(prop.key);
                auto* pv = set->add_values();
                pv->set_type(static_cast<std::uint32_t>(prop.type));
                if (std::holds_alternative<std::monostate>(prop.val))
                    pv->set_is_null(true);
                else
                    put_value(*pv, prop.type, prop.val);
            }
        }
    }
    std::string out;
    if (!w.SerializeToString(&out))
        throw std::runtime_error("Sparkplug payload: protobuf serialization failed");
    return out;
}

payload decode(std::string_view bytes) {
    wire::payload w;
    if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()) ||
        !w.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
        throw decode_error("not a Sparkplug B payload (protobuf parse failed, " + std::to_string(bytes.size()) +
                           " bytes)");
    payload p;
    if (w.has_timestamp())
        p.timestamp_ms = w.timestamp();
    if (w.has_seq())
        p.seq = w.seq();
    p.metrics.reserve(static_cast<std::size_t>(w.metrics_size()));
    for (const auto& wm : w.metrics()) {
        metric m;
        m.name = wm.name();
        if (wm.has_alias())
            m.alias = wm.alias();
        if (wm.has_timestamp())
            m.timestamp_ms = wm.timestamp();
        m.type = static_cast<datatype>(wm.datatype());
        m.is_historical = wm.is_historical();
        m.val = wm.is_null() ? value{} : get_value(wm);
        if (wm.has_properties()) {
            const auto& set = wm.properties();
            if (set.keys_size() != set.values_size())
                throw decode_error("Sparkplug metric '" + m.name + "': " + std::to_string(set.keys_size()) +
                                   " property keys but " + std::to_string(set.values_size()) + " values");
            for (int i = 0; i < set.keys_size(); ++i) {
                const auto& pv = set.values(i);
                m.properties.push_back(property{set.keys(i), static_cast<datatype>(pv.type()),
                                                pv.is_null() ? value{} : get_value(pv)});
            }
        }
        p.metrics.push_back(std::move(m));
    }
    return p;
}

metric make_metric(std::string name, datatype type, value v, std::optional<std::uint64_t> timestamp_ms) {
    metric m;
    m.name = std::move(name);
    m.type = type;
    m.val = std::move(v);
    m.timestamp_ms = timestamp_ms;
    return m;
}

std::uint64_t utc_now_ms() noexcept {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
}

}  // namespace io::gate
