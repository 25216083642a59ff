// SPDX-License-Identifier: MIT
#include <io/error.hpp>
#include <io/rt.hpp>

#include "error.hpp"
#include "files.hpp"
#include "sys.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <limits>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <utility>

namespace io::rt {

namespace {

std::string cpu_list(const std::vector<unsigned>& cpus) {
    std::string s;
    for (std::size_t i = 0; i < cpus.size();) {
        std::size_t j = i;
        while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1)
            ++j;
        if (!s.empty())
            s += ',';
        s += std::to_string(cpus[i]);
        if (j > i)
            s += '-' + std::to_string(cpus[j]);
        i = j + 1;
    }
    return s.empty() ? "none" : s;
}

std::vector<unsigned> parse_cpu_list(const std::string& text) {
    // "0-3,8,10-11", as the kernel writes cpu lists.
    std::vector<unsigned> cpus;
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t used = 0;
        unsigned long lo = 0, hi = 0;
        try {
            lo = hi = std::stoul(text.substr(i), &used);
            i += used;
            if (i < text.size() && text[i] == '-') {
                hi = std::stoul(text.substr(i + 1), &used);
                i += used + 1;
            }
        } catch (const std::exception&) {
            return {};
        }
        for (auto c = lo; c <= hi && c < CPU_SETSIZE; ++c)
            cpus.push_back(static_cast<unsigned>(c));
        while (i < text.size() && (text[i] == ',' || text[i] == '\n' || text[i] == ' '))
            ++i;
    }
    return cpus;
}

// The CPUs of this process's cpuset: the effective CPUs of its cgroup (v2
// cpuset.cpus.effective, or v1 cpuset.effective_cpus), from the nearest
// ancestor that has the file; else the online CPUs.
std::vector<unsigned> cpuset_cpus() {
    std::ifstream cg{"/proc/self/cgroup"};
    for (std::string line; std::getline(cg, line);) {
        std::string base, file;
        const auto colon = line.find(':');
        const auto colon2 = line.find(':', colon + 1);
        if (colon == std::string::npos || colon2 == std::string::npos)
            continue;
        const auto controllers = line.substr(colon + 1, colon2 - colon - 1);
        if (line.rfind("0::", 0) == 0) {
            base = "/sys/fs/cgroup";
            file = "/cpuset.cpus.effective";
        } else if (controllers == "cpuset") {
            base = "/sys/fs/cgroup/cpuset";
            file = "/cpuset.effective_cpus";
        } else {
            continue;
        }
        for (std::string dir = line.substr(colon2 + 1);;) {
            if (auto cpus = parse_cpu_list(detail::first_line(base + dir + file)); !cpus.empty())
                return cpus;
            if (dir.empty() || dir == "/")
                break;
            dir = dir.substr(0, dir.rfind('/'));
        }
    }
    return parse_cpu_list(detail::first_line("/sys/devices/system/cpu/online"));
}

std::string limit_text(int resource) {
    rlimit rl{};
    if (::getrlimit(resource, &rl) != 0)
        return "unknown";
    if (rl.rlim_cur == RLIM_INFINITY)
        return "unlimited";
    return std::to_string(rl.rlim_cur);
}

}  // namespace

void set_fifo(int priority) {
    const int lo = ::sched_get_priority_min(SCHED_FIFO);
    const int hi = ::sched_get_priority_max(SCHED_FIFO);
    if (priority < lo || priority > hi)
        throw invalid_argument("SCHED_FIFO priority " + std::to_string(priority) + " is outside " +
                               std::to_string(lo) + ".." + std::to_string(hi));
    sched_param sp{};
    sp.sched_priority = priority;
    // pthread_setschedparam returns the error instead of setting errno.
    const int err = detail::sys().setschedparam(::pthread_self(), SCHED_FIFO, &sp);
    if (err == 0)
        return;
    std::string what = "set SCHED_FIFO priority " + std::to_string(priority);
    if (err == EPERM)
        what += " (not permitted: grant the process CAP_SYS_NICE, or an rtprio limit of at least " +
                std::to_string(priority) + " (now " + limit_text(RLIMIT_RTPRIO) +
                "): `ulimit -r " + std::to_string(priority) + "`, limits.conf `@group - rtprio " +
                std::to_string(priority) + "`, systemd LimitRTPRIO=; in a cgroup with RT throttling, "
                "also an RT runtime (cpu.rt_runtime_us))";
    detail::throw_errno(err, what);
}

void set_normal() {
    sched_param sp{};
    const int err = detail::sys().setschedparam(::pthread_self(), SCHED_OTHER, &sp);
    if (err != 0)
        detail::throw_errno(err, "set SCHED_OTHER");
}

std::string scheduling() {
    int policy = 0;
    sched_param sp{};
    if (::pthread_getschedparam(::pthread_self(), &policy, &sp) != 0)
        return "unknown";
    switch (policy) {
    case SCHED_FIFO:
        return "SCHED_FIFO " + std::to_string(sp.sched_priority);
    case SCHED_RR:
        return "SCHED_RR " + std::to_string(sp.sched_priority);
    case SCHED_OTHER:
        return "SCHED_OTHER";
    case SCHED_BATCH:
        return "SCHED_BATCH";
    case SCHED_IDLE:
        return "SCHED_IDLE";
    default:
        return "policy " + std::to_string(policy);
    }
}

void lock_memory() {
    if (detail::sys().mlockall(MCL_CURRENT | MCL_FUTURE) == 0)
        return;
    const int err = errno;
    std::string what = "lock memory (mlockall)";
    if (err == EPERM || err == ENOMEM)
        what += " (grant the process CAP_IPC_LOCK, or a memlock limit above its size (now " +
                limit_text(RLIMIT_MEMLOCK) +
                " bytes): `ulimit -l unlimited`, limits.conf `@group - memlock unlimited`, "
                "systemd LimitMEMLOCK=infinity)";
    detail::throw_errno(err, what);
}

void unlock_memory() noexcept {
    (void)::munlockall();
}

std::vector<unsigned> allowed_cpus() {
    return cpuset_cpus();
}

std::vector<unsigned> thread_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<unsigned> cpus;
    if (const int err = detail::sys().getaffinity(::pthread_self(), sizeof set, &set); err != 0)
        detail::throw_errno(err, "read the thread's CPU affinity");
    for (unsigned c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set))
            cpus.push_back(c);
    return cpus;
}

void pin_to_cpus(std::span<const unsigned> cpus) {
    if (cpus.empty())
        throw invalid_argument("pin to CPUs: no CPU given");
    // Checked against the process's cpuset, not the thread's affinity: a
    // thread started by a pinned one inherits its mask and may still move
    // to any CPU of the cpuset.
    const auto allowed = cpuset_cpus();
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<unsigned> want;
    for (auto c : cpus) {
        if (std::find(allowed.begin(), allowed.end(), c) == allowed.end())
            throw invalid_argument("pin to CPU " + std::to_string(c) + ": not available to this process (allowed: " +
                                   cpu_list(allowed) + ", the online CPUs of its cpuset)");
        CPU_SET(c, &set);
        want.push_back(c);
    }
    std::sort(want.begin(), want.end());
    want.erase(std::unique(want.begin(), want.end()), want.end());
    const int err = detail::sys().setaffinity(::pthread_self(), sizeof set, &set);
    if (err == EINVAL)
        throw invalid_argument("pin to CPUs " + cpu_list(want) +
                               ": refused by the kernel (offline, or outside the cpuset; allowed now: " +
                               cpu_list(cpuset_cpus()) + ")");
    if (err != 0)
        detail::throw_errno(err, "pin to CPUs " + cpu_list(want));
}

void prefault_stack(std::size_t bytes) noexcept {
    // alloca'd memory is below this frame; volatile keeps the writes.
    auto* p = static_cast<volatile unsigned char*>(__builtin_alloca(bytes));
    for (std::size_t i = 0; i < bytes; i += 4096)
        p[i] = 0;
}

cpu_latency_limit::cpu_latency_limit(std::chrono::microseconds max) : max_{max} {
    constexpr const char* path = "/dev/cpu_dma_latency";
    if (max.count() < 0 || max.count() > std::numeric_limits<std::int32_t>::max())
        throw invalid_argument("CPU wake-up latency limit " + std::to_string(max.count()) +
                               " us is outside 0.." + std::to_string(std::numeric_limits<std::int32_t>::max()) +
                               " us");
    fd_ = detail::retry_eintr([&] { return detail::sys().open(path, O_WRONLY | O_CLOEXEC, 0); });
    if (fd_ < 0) {
        const int err = errno;
        std::string what = std::string("limit CPU wake-up latency (") + path + ")";
        if (err == EACCES || err == EPERM)
            what += " (only root may write it by default: run as root, or give the group write access with a "
                    "udev rule such as KERNEL==\"cpu_dma_latency\", GROUP=\"iocard\", MODE=\"0660\")";
        else if (err == ENOENT)
            what += " (this kernel has no PM QoS device)";
        detail::throw_errno(err, what);
    }
    // The kernel takes the limit as a binary s32 in microseconds, and holds
    // it while the file stays open.
    const std::int32_t v = static_cast<std::int32_t>(max.count());
    const auto n = detail::retry_eintr([&] { return detail::sys().write(fd_, &v, sizeof v); });
    if (n != static_cast<ssize_t>(sizeof v)) {
        const int err = n < 0 ? errno : EIO;
        detail::sys().close(fd_);
        fd_ = -1;
        detail::throw_errno(err, std::string("limit CPU wake-up latency (") + path + "): write");
    }
}

cpu_latency_limit::~cpu_latency_limit() {
    if (fd_ >= 0)
        detail::sys().close(fd_);
}

cpu_latency_limit::cpu_latency_limit(cpu_latency_limit&& other) noexcept
    : fd_{std::exchange(other.fd_, -1)}, max_{other.max_} {}

cpu_latency_limit& cpu_latency_limit::operator=(cpu_latency_limit&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0)
            detail::sys().close(fd_);
        fd_ = std::exchange(other.fd_, -1);
        max_ = other.max_;
    }
    return *this;
}

periodic_timer::periodic_timer(std::chrono::nanoseconds period)
    : periodic_timer(period, clock::now() + period) {}

periodic_timer::periodic_timer(std::chrono::nanoseconds period, clock::time_point first)
    : period_{period}, next_{first} {
    if (period.count() <= 0)
        throw invalid_argument("periodic timer: period must be positive, got " + std::to_string(period.count()) +
                               " ns");
}

namespace {

timespec to_timespec(periodic_timer::clock::time_point t) noexcept {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

}  // namespace

std::chrono::nanoseconds periodic_timer::wait() noexcept {
    static_assert(std::is_same_v<clock, std::chrono::steady_clock>, "steady_clock is CLOCK_MONOTONIC on Linux");
    auto now = clock::now();
    if (now > next_) {
        // The body ran past this deadline: skip to the first one ahead.
        const auto missed = static_cast<std::uint64_t>((now - next_) / period_) + 1;
        overruns_ += missed;
        next_ += period_ * static_cast<std::int64_t>(missed);
    }
    const auto ts = to_timespec(next_);
    while (detail::sys().clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
    now = clock::now();
    const auto late = std::chrono::duration_cast<std::chrono::nanoseconds>(now - next_);
    next_ += period_;
    ++cycles_;
    return late;
}

// latency_histogram

latency_histogram::latency_histogram() : counts_(num_buckets, 0) {}

std::int64_t latency_histogram::percentile_ns(double p) const noexcept {
    if (n_ == 0)
        return 0;
    p = std::clamp(p, 0.0, 100.0);
    // The rank of the sample asked for, 1-based: the smallest sample with at
    // least p percent of the samples at or below it.
    auto rank = static_cast<std::uint64_t>(p / 100.0 * static_cast<double>(n_) + 0.999999);
    rank = std::clamp<std::uint64_t>(rank, 1, n_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
        seen += counts_[i];
        if (seen >= rank)
            return static_cast<std::int64_t>(std::clamp(upper_of(i), min_, max_));
    }
    return static_cast<std::int64_t>(max_);
}

latency_histogram::summary latency_histogram::summarize() const noexcept {
    return summary{n_,
                   min_ns(),
                   percentile_ns(50),
                   percentile_ns(90),
                   percentile_ns(99),
                   percentile_ns(99.9),
                   max_ns(),
                   mean_ns()};
}

std::vector<latency_histogram::bucket> latency_histogram::buckets() const {
    std::vector<bucket> out;
    for (std::size_t i = 0; i < counts_.size(); ++i)
        if (counts_[i] != 0)
            out.push_back(bucket{static_cast<std::int64_t>(lower_of(i)),
                                 static_cast<std::int64_t>(std::min(upper_of(i), max_)), counts_[i]});
    return out;
}

void latency_histogram::merge(const latency_histogram& other) noexcept {
    for (std::size_t i = 0; i < counts_.size(); ++i)
        counts_[i] += other.counts_[i];
    n_ += other.n_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
}

void latency_histogram::reset() noexcept {
    std::fill(counts_.begin(), counts_.end(), 0);
    n_ = 0;
    sum_ = 0;
    min_ = std::numeric_limits<std::uint64_t>::max();
    max_ = 0;
}

}  // namespace io::rt
