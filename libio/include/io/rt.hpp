// SPDX-License-Identifier: MIT
// Real-time helpers: what a deterministic loop needs from the system.
//
//   io::rt::lock_memory();              // no page faults from here on
//   io::rt::cpu_latency_limit awake;    // no deep C-states while it lives
//   io::rt::pin_to_cpu(1);
//   io::rt::set_fifo(80);
//   io::rt::prefault_stack();
//   io::rt::periodic_timer tick{1ms};
//   io::rt::latency_histogram wake;
//   for (;;) {
//       wake.record(tick.wait());       // how late the thread woke
//       cycle();
//   }
#pragma once

#include <io/export.hpp>
#include <io/rt_histogram.hpp>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace io::rt {

/// Runs the calling thread under SCHED_FIFO at `priority` (1..99; 99 is the
/// highest, above the kernel's threaded interrupts at 50).
/// \throws io::invalid_argument when priority is outside 1..99.
/// \throws std::system_error EPERM when the process may not, the message
///         saying what to grant: CAP_SYS_NICE, or an rtprio limit of at least
///         `priority` (`ulimit -r`, limits.conf `rtprio`), and, under systemd,
///         no RT throttling by cgroup (CPUWeight alone does not give RT).
LIBIO_EXPORT void set_fifo(int priority);

/// Puts the calling thread back under SCHED_OTHER (nice 0).
LIBIO_EXPORT void set_normal();

/// The calling thread's policy and priority, for reports: "SCHED_FIFO 80",
/// "SCHED_OTHER".
LIBIO_EXPORT std::string scheduling();

/// Locks the process's memory, present and future (mlockall), so the loop
/// takes no page faults.
/// \throws std::system_error EPERM or ENOMEM, the message saying what to
///         grant: CAP_IPC_LOCK or a memlock limit large enough (`ulimit -l
///         unlimited`, limits.conf `memlock`, systemd LimitMEMLOCK=).
LIBIO_EXPORT void lock_memory();

/// Undoes lock_memory(). Never fails.
LIBIO_EXPORT void unlock_memory() noexcept;

/// Pins the calling thread to the given CPUs. Any CPU of the process's
/// cpuset may be given, whatever the thread's affinity now (a thread started
/// by a pinned thread inherits its mask, and may still move elsewhere).
/// \throws io::invalid_argument when cpus is empty or names a CPU this
///         process may not use (the message lists those it may).
/// \throws std::system_error for other errors of sched_setaffinity.
LIBIO_EXPORT void pin_to_cpus(std::span<const unsigned> cpus);
inline void pin_to_cpu(unsigned cpu) {
    pin_to_cpus(std::span<const unsigned>(&cpu, 1));
}

/// The CPUs threads of this process may be pinned to, in increasing order:
/// the online CPUs of its cpuset (cgroup v2 cpuset.cpus.effective).
LIBIO_EXPORT std::vector<unsigned> allowed_cpus();

/// The CPUs the calling thread may run on now (its affinity), in
/// increasing order.
/// \throws std::system_error when the kernel does not say.
LIBIO_EXPORT std::vector<unsigned> thread_cpus();

/// Touches `bytes` of the calling thread's stack below the current frame so
/// that its pages exist before the loop starts (with lock_memory() they
/// then stay). Keep it well below the stack size (8 MiB by default).
LIBIO_EXPORT void prefault_stack(std::size_t bytes = 256 * 1024) noexcept;

/// Keeps every CPU out of idle states whose exit latency exceeds `max`
/// (the kernel's PM QoS, /dev/cpu_dma_latency) for the life of the object,
/// as cyclictest does by default. Waking from a deep C-state can add tens to
/// hundreds of microseconds to a deadline; with 0 (the default) idle CPUs
/// poll instead, which costs power. The limit is system-wide and ends when
/// the object is destroyed (or the process exits).
class LIBIO_EXPORT cpu_latency_limit final {
public:
    /// \throws io::invalid_argument when max is negative or above 2^31-1 us.
    /// \throws std::system_error when the kernel refuses; EACCES says what
    ///         to grant (root, or write access to /dev/cpu_dma_latency for a
    ///         group by a udev rule), ENOENT that the kernel has no PM QoS.
    explicit cpu_latency_limit(std::chrono::microseconds max = std::chrono::microseconds{0});
    ~cpu_latency_limit();
    cpu_latency_limit(cpu_latency_limit&& other) noexcept;
    cpu_latency_limit& operator=(cpu_latency_limit&& other) noexcept;
    cpu_latency_limit(const cpu_latency_limit&) = delete;
    cpu_latency_limit& operator=(const cpu_latency_limit&) = delete;

    std::chrono::microseconds max() const noexcept { return max_; }

private:
    int fd_ = -1;
    std::chrono::microseconds max_;
};

/// A periodic wake-up on absolute deadlines (clock_nanosleep with
/// TIMER_ABSTIME on CLOCK_MONOTONIC): the period does not drift with the
/// time the loop body takes.
///
/// When the body runs past the next deadline (an overrun), the deadlines
/// already passed are skipped, not replayed in a burst: each one skipped is
/// counted in overruns(), and wait() sleeps to the next deadline ahead.
/// Never allocates; one object per thread.
class LIBIO_EXPORT periodic_timer final {
public:
    using clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC

    /// First deadline one period from now.
    /// \throws io::invalid_argument when period is not positive.
    explicit periodic_timer(std::chrono::nanoseconds period);
    /// First deadline at `first`.
    periodic_timer(std::chrono::nanoseconds period, clock::time_point first);

    /// Sleeps until the next deadline; a signal does not end the sleep early.
    /// \returns how late the thread woke after the deadline (its wake-up
    ///          latency, what cyclictest measures).
    std::chrono::nanoseconds wait() noexcept;

    /// The deadline the next wait() sleeps to (after skipping any passed).
    clock::time_point next_deadline() const noexcept { return next_; }
    std::chrono::nanoseconds period() const noexcept { return period_; }
    /// Deadlines skipped because the body ran past them.
    std::uint64_t overruns() const noexcept { return overruns_; }
    /// Completed waits.
    std::uint64_t cycles() const noexcept { return cycles_; }

private:
    std::chrono::nanoseconds period_;
    clock::time_point next_;
    std::uint64_t overruns_ = 0;
    std::uint64_t cycles_ = 0;
};

}  // namespace io::rt
