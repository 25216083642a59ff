// SPDX-License-Identifier: MIT
#pragma once

#include <io/export.hpp>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdint>
#include <limits>
#include <vector>

namespace io::rt {

/// A latency histogram with fixed buckets: recording never allocates, never
/// fails and costs a few instructions, so it can sit in a real-time loop.
///
/// Buckets are log-linear over nanoseconds: exact below 128 ns, then 64
/// buckets per power of two, so every percentile is within 1.6% of the true
/// sample (above 128 ns). Values from 2^40 ns (about 18 minutes) on land in
/// the last bucket; min, max and the mean are exact. Negative samples (a
/// clock that went backwards) count as 0.
///
/// The buckets are allocated once by the constructor (18 KiB). Copyable;
/// one object per thread (record() is not atomic): merge() per-thread
/// histograms afterwards.
class LIBIO_EXPORT latency_histogram final {
public:
    /// What a histogram says in a few numbers, in nanoseconds.
    struct summary {
        std::uint64_t n;
        std::int64_t min, p50, p90, p99, p999, max;
        double mean;
    };
    /// One non-empty bucket: samples in [lower, upper] ns.
    struct bucket {
        std::int64_t lower, upper;
        std::uint64_t count;
    };

    latency_histogram();

    /// Records one sample. Never allocates; noexcept.
    void record(std::chrono::nanoseconds d) noexcept { record_ns(d.count()); }
    void record_ns(std::int64_t ns) noexcept {
        const auto v = static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0));
        ++counts_[index_of(v)];
        ++n_;
        sum_ += static_cast<double>(v);
        min_ = std::min(min_, v);
        max_ = std::max(max_, v);
    }

    std::uint64_t count() const noexcept { return n_; }
    /// Exact smallest and largest samples; 0 when empty.
    std::int64_t min_ns() const noexcept { return n_ == 0 ? 0 : static_cast<std::int64_t>(min_); }
    std::int64_t max_ns() const noexcept { return static_cast<std::int64_t>(max_); }
    double mean_ns() const noexcept { return n_ == 0 ? 0.0 : sum_ / static_cast<double>(n_); }

    /// The sample below which p percent of the samples lie (p in 0..100;
    /// 50 is the median, 99.9 the p99.9): the upper edge of the bucket that
    /// holds it, clamped to [min, max]. 0 when empty.
    std::int64_t percentile_ns(double p) const noexcept;

    summary summarize() const noexcept;
    /// The non-empty buckets, in increasing order (allocates: not for the loop).
    std::vector<bucket> buckets() const;

    /// Adds the samples of another histogram to this one.
    void merge(const latency_histogram& other) noexcept;
    void reset() noexcept;

    /// Bucket layout, for tests and tools.
    static constexpr unsigned sub_bits = 6;                        ///< 64 buckets per power of two
    static constexpr unsigned exact_below = 2U << sub_bits;        ///< 128: one bucket per ns below
    static constexpr unsigned max_exponent = 40;                   ///< 2^40 ns: the overflow bucket
    static constexpr std::size_t num_buckets =
        exact_below + (max_exponent - (sub_bits + 1)) * (1U << sub_bits);

    /// Which bucket a value goes in, and the range of a bucket.
    static constexpr std::size_t index_of(std::uint64_t v) noexcept {
        if (v < exact_below)
            return static_cast<std::size_t>(v);
        const unsigned e = static_cast<unsigned>(std::bit_width(v)) - 1;  // >= sub_bits + 1
        if (e >= max_exponent)
            return num_buckets - 1;
        const unsigned shift = e - sub_bits;
        const auto m = static_cast<std::size_t>(v >> shift);  // in [64, 128)
        return exact_below + (e - (sub_bits + 1)) * (std::size_t{1} << sub_bits) + (m - (std::size_t{1} << sub_bits));
    }
    static constexpr std::uint64_t lower_of(std::size_t i) noexcept {
        if (i < exact_below)
            return i;
        const std::size_t k = i - exact_below;
        const auto e = static_cast<unsigned>(k >> sub_bits) + sub_bits + 1;
        const std::uint64_t m = (std::uint64_t{1} << sub_bits) + (k & ((std::size_t{1} << sub_bits) - 1));
        return m << (e - sub_bits);
    }
    static constexpr std::uint64_t upper_of(std::size_t i) noexcept {
        if (i + 1 >= num_buckets)
            return std::numeric_limits<std::int64_t>::max();
        return lower_of(i + 1) - 1;
    }

private:
    std::vector<std::uint64_t> counts_;
    std::uint64_t n_ = 0;
    double sum_ = 0;
    std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t max_ = 0;
};

}  // namespace io::rt
