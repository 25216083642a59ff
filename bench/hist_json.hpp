// SPDX-License-Identifier: MIT
// One latency histogram as JSON members, the form bench/report.py reads:
//   "n": .., "min": .., "p50": .., "p90": .., "p99": .., "p999": .., "max": ..,
//   "mean": .., "buckets": [[lower, upper, count], ...]
#pragma once

#include <io/rt_histogram.hpp>

#include <cstdio>

namespace bench {

inline void write_histogram_members(std::FILE* f, const io::rt::latency_histogram& h) {
    const auto s = h.summarize();
    std::fprintf(f,
                 "\"n\": %llu, \"min\": %lld, \"p50\": %lld, \"p90\": %lld, \"p99\": %lld, \"p999\": %lld, "
                 "\"max\": %lld, \"mean\": %.1f, \"buckets\": [",
                 static_cast<unsigned long long>(s.n), static_cast<long long>(s.min), static_cast<long long>(s.p50),
                 static_cast<long long>(s.p90), static_cast<long long>(s.p99), static_cast<long long>(s.p999),
                 static_cast<long long>(s.max), s.mean);
    bool first = true;
    for (const auto& b : h.buckets()) {
        std::fprintf(f, "%s[%lld, %lld, %llu]", first ? "" : ", ", static_cast<long long>(b.lower),
                     static_cast<long long>(b.upper), static_cast<unsigned long long>(b.count));
        first = false;
    }
    std::fprintf(f, "]");
}

}  // namespace bench
