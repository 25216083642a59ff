// SPDX-License-Identifier: MIT
#include <io/event_loop.hpp>

#include "error.hpp"
#include "event_loop_access.hpp"
#include "sys.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <string>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace io {
namespace {

// epoll data of the loop's own wake-up eventfd; registrations count from 1.
constexpr std::uint64_t stop_id = 0;

timespec to_timespec(std::chrono::nanoseconds ns) noexcept {
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(ns);
    return {static_cast<time_t>(s.count()), static_cast<long>((ns - s).count())};
}

class unique_fd final {
public:
    explicit unique_fd(int fd = -1) noexcept : fd_{fd} {}
    ~unique_fd() {
        if (fd_ >= 0)
            detail::sys().close(fd_);
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    int get() const noexcept { return fd_; }

private:
    int fd_;
};

}  // namespace

struct event_loop::impl {
    struct entry {
        int fd;
        std::unique_ptr<unique_fd> timer;  // owned timerfd, for timers
        bool once = false;
        bool removed = false;  // its registration was removed
        bool dormant = false;  // no longer in the epoll set (unwatch_current)
        bool running = false;  // its callback is running (maybe under a nested one)
        std::uint64_t linked = 0;  // a registration removed with this one (event_loop_access::link)
        fd_callback on_fd;
        timer_callback on_timer;
        std::shared_ptr<entry> next_retired;  // see retire()
    };

    unique_fd epoll{::epoll_create1(EPOLL_CLOEXEC)};
    unique_fd wake{::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
    // The registrations, by id. An id is (serial << slot_bits) | slot: a
    // lookup is an index and a compare, no hashing, and ids still grow with
    // age (remove() compares them). Freed slots are reused; free_slots has
    // room for every slot, so freeing one never allocates.
    static constexpr unsigned slot_bits = 24;
    struct slot {
        std::uint64_t id = 0;  // 0: free
        std::shared_ptr<entry> e;
    };
    std::vector<slot> slots;
    std::vector<std::size_t> free_slots;
    std::uint64_t next_serial = 1;
    // Set by stop() (any thread, signal handlers); checked before every
    // callback, so a stop takes effect before the next callback runs.
    std::atomic<bool> stop_requested{false};
    entry* current = nullptr;  // the entry whose callback is running
    // Entries removed while their callback runs (a callback may remove its
    // own registration, or a nested loop's callback an outer one's): the
    // entry must outlive the callback. Kept here, in a list through the
    // entries themselves (no allocation in remove()), until the outermost
    // dispatch ends; cheaper than holding a shared_ptr copy (two atomic
    // operations) around every callback.
    std::shared_ptr<entry> retired;
    int dispatching = 0;  // nesting depth of dispatch()

    /// Consumes a pending stop: true if there was one. (A plain load first:
    /// the atomic exchange, a locked instruction, only when there is one.)
    bool take_stop() noexcept {
        if (!stop_requested.load(std::memory_order_acquire))
            return false;
        if (!stop_requested.exchange(false, std::memory_order_acq_rel))
            return false;
        std::uint64_t v;
        (void)detail::sys().read(wake.get(), &v, sizeof v);  // its wake-up is spent too
        return true;
    }

    bool stop_pending() const noexcept { return stop_requested.load(std::memory_order_acquire); }

    /// The slot of a live registration, or nullptr.
    slot* find(std::uint64_t id) noexcept {
        const auto i = static_cast<std::size_t>(id & ((std::uint64_t{1} << slot_bits) - 1));
        return id != 0 && i < slots.size() && slots[i].id == id ? &slots[i] : nullptr;
    }

    /// Frees the registration's slot; its entry is freed at once, unless its
    /// callback runs (or is about to: keep), then when the outermost
    /// dispatch ends.
    void retire(slot& sl, bool keep = false) noexcept {
        auto e = std::move(sl.e);
        sl.id = 0;
        free_slots.push_back(static_cast<std::size_t>(&sl - slots.data()));  // has room: no allocation
        if (dispatching > 0 && (keep || e->running)) {
            e->next_retired = std::move(retired);
            retired = std::move(e);
        }
        // else freed here, after the table is consistent again (its
        // callback's destructors may watch or remove)
    }

    void free_retired() noexcept {
        auto e = std::move(retired);
        while (e)  // one by one: no recursion through next_retired
            e = std::move(e->next_retired);
    }

    // Defined in the class: the loop's internals stay out of the exported symbols.
    std::size_t dispatch(std::chrono::milliseconds timeout, std::error_code& ec) {
        std::array<epoll_event, 32> evs;  // epoll_wait fills the first n
        const int ms = timeout.count() < 0 ? -1 : static_cast<int>(std::min<std::int64_t>(timeout.count(), INT32_MAX));
        const int n = detail::sys().epoll_wait(epoll.get(), evs.data(), static_cast<int>(evs.size()), ms);
        if (n < 0) {
            if (errno != EINTR)  // a signal only cuts the wait short
                ec = detail::errno_code(errno);
            return 0;
        }
        std::size_t ran = 0;
        struct nesting {
            impl& self;
            explicit nesting(impl& s) noexcept : self{s} { ++self.dispatching; }
            ~nesting() {
                if (--self.dispatching == 0)
                    self.free_retired();
            }
            nesting(const nesting&) = delete;
            nesting& operator=(const nesting&) = delete;
        } depth{*this};
        for (int i = 0; i < n; ++i) {
            // A stop (from a callback of this batch, another thread or a signal
            // handler) ends the batch here. What is left is level-triggered (fds,
            // and timers whose expirations are still unread), so the next run
            // sees it again: nothing is lost by stopping.
            if (stop_pending())
                break;
            const auto& ev = evs[static_cast<std::size_t>(i)];
            if (ev.data.u64 == stop_id) {
                std::uint64_t v;
                (void)detail::sys().read(wake.get(), &v, sizeof v);
                continue;
            }
            // Looked up afresh: an earlier callback of this batch may have removed it.
            slot* const sl = find(ev.data.u64);
            if (sl == nullptr)
                continue;
            entry* const e = sl->e.get();  // alive while its callback runs, even if removed (retire())
            if (e->timer) {
                std::uint64_t expirations;
                if (detail::sys().read(e->fd, &expirations, sizeof expirations) != sizeof expirations)
                    continue;  // spurious: the timer was re-armed or read already
                if (e->once) {
                    e->removed = true;
                    retire(*sl, true);
                }
            }
            struct running {
                entry*& slot;
                entry* self;
                entry* saved;
                bool was_running;
                ~running() {
                    self->running = was_running;
                    slot = saved;
                }
            } guard{current, e, std::exchange(current, e), std::exchange(e->running, true)};
            if (e->timer)
                e->on_timer();
            else
                e->on_fd(readiness{ev.events});
            ++ran;
        }
        return ran;
    }

    std::uint64_t add(int fd, std::uint32_t events, std::shared_ptr<entry> e) {
        // The slot first: nothing can fail once the fd is in the epoll set.
        std::size_t i;
        if (!free_slots.empty()) {
            i = free_slots.back();
        } else {
            if (slots.size() >= (std::size_t{1} << slot_bits))
                detail::throw_errno(ENOSPC, "event loop: watch fd " + std::to_string(fd));
            slots.emplace_back();
            free_slots.push_back(slots.size() - 1);
            free_slots.reserve(slots.capacity());
            i = slots.size() - 1;
        }
        const auto id = (next_serial++ << slot_bits) | i;
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = id;
        if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
            detail::throw_errno(errno, "event loop: watch fd " + std::to_string(fd));
        free_slots.pop_back();
        slots[i] = slot{id, std::move(e)};
        return id;
    }

    // first: the absolute CLOCK_MONOTONIC deadline (steady_clock is it).
    registration arm_timer(event_loop* loop, clock::time_point first, clock::duration period, timer_callback cb) {
        auto tfd = std::make_unique<unique_fd>(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
        if (tfd->get() < 0)
            detail::throw_errno(errno, "event loop: create timer");
        // A zero expiry would disarm a timerfd; one nanosecond is "at once".
        const auto deadline = std::max(std::chrono::duration_cast<std::chrono::nanoseconds>(first.time_since_epoch()),
                                       std::chrono::nanoseconds{1});
        itimerspec spec{};
        spec.it_value = to_timespec(deadline);
        spec.it_interval = to_timespec(period);
        if (::timerfd_settime(tfd->get(), TFD_TIMER_ABSTIME, &spec, nullptr) != 0)
            detail::throw_errno(errno, "event loop: arm timer");
        auto e = std::make_shared<entry>();
        e->fd = tfd->get();
        e->timer = std::move(tfd);
        e->once = period == clock::duration::zero();
        e->on_timer = std::move(cb);
        const int fd = e->fd;
        return {loop, add(fd, EPOLLIN, std::move(e))};
    }
};

event_loop::event_loop() : impl_{std::make_unique<impl>()} {
    if (impl_->epoll.get() < 0)
        detail::throw_errno(errno, "event loop: epoll_create1");
    if (impl_->wake.get() < 0)
        detail::throw_errno(errno, "event loop: eventfd");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = stop_id;
    if (::epoll_ctl(impl_->epoll.get(), EPOLL_CTL_ADD, impl_->wake.get(), &ev) != 0)
        detail::throw_errno(errno, "event loop: watch its eventfd");
}

event_loop::~event_loop() = default;

registration event_loop::watch(int fd, ready what, fd_callback cb) {
    if (!cb)
        throw invalid_argument("event_loop::watch: the callback is empty");
    auto e = std::make_shared<impl::entry>();
    e->fd = fd;
    e->on_fd = std::move(cb);
    return {this, impl_->add(fd, static_cast<std::uint32_t>(what), std::move(e))};
}

registration event_loop::call_after(clock::duration after, timer_callback cb) {
    if (!cb)
        throw invalid_argument("event_loop::call_after: the callback is empty");
    return impl_->arm_timer(this, clock::now() + std::max(after, clock::duration{1}), clock::duration::zero(),
                            std::move(cb));
}

registration event_loop::call_every(clock::duration period, timer_callback cb) {
    return call_every(period, clock::now() + period, std::move(cb));
}

registration event_loop::call_every(clock::duration period, clock::time_point first, timer_callback cb) {
    if (period <= clock::duration::zero())
        throw invalid_argument("event_loop::call_every: the period must be positive");
    if (!cb)
        throw invalid_argument("event_loop::call_every: the callback is empty");
    return impl_->arm_timer(this, first, period, std::move(cb));
}

std::size_t event_loop::run_once(std::chrono::milliseconds timeout, std::error_code& ec) {
    ec.clear();
    if (impl_->take_stop())
        return 0;
    const auto ran = impl_->dispatch(timeout, ec);
    impl_->take_stop();  // a stop during this run ends this run
    return ran;
}

std::size_t event_loop::run_once(std::chrono::milliseconds timeout) {
    std::error_code ec;
    const auto ran = run_once(timeout, ec);
    if (ec)
        detail::throw_errno(ec.value(), "event loop: epoll_wait");
    return ran;
}

void event_loop::run() {
    while (!impl_->take_stop()) {
        std::error_code ec;
        impl_->dispatch(std::chrono::milliseconds{-1}, ec);
        if (ec)
            detail::throw_errno(ec.value(), "event loop: epoll_wait");
    }
}

void event_loop::stop() noexcept {
    impl_->stop_requested.store(true, std::memory_order_release);
    // Wakes a wait in progress (on another thread, or a nesting loop).
    const std::uint64_t one = 1;
    (void)!::write(impl_->wake.get(), &one, sizeof one);
}

int event_loop::fd() const noexcept {
    return impl_->epoll.get();
}

void event_loop::remove(std::uint64_t id) noexcept {
    auto* const sl = impl_->find(id);
    if (sl == nullptr)
        return;
    auto& e = *sl->e;
    // The fd may already be closed by its owner; then epoll dropped it itself,
    // and its number may since belong to a newer registration's fd, which a
    // delete by number would take out of the set. A newer entry with the
    // same number means exactly that (epoll refuses a live fd twice).
    const bool reused = std::any_of(impl_->slots.begin(), impl_->slots.end(),
                                    [&](const auto& o) { return o.id > id && o.e && o.e->fd == e.fd; });
    if (!e.dormant && !reused)
        (void)::epoll_ctl(impl_->epoll.get(), EPOLL_CTL_DEL, e.fd, nullptr);
    e.removed = true;
    const auto linked = e.linked;
    impl_->retire(*sl);
    if (linked != 0)
        remove(linked);
}

namespace detail {

bool event_loop_access::keep_calling(const event_loop& loop) noexcept {
    const auto* e = loop.impl_->current;
    return e != nullptr && !e->removed && !loop.impl_->stop_pending();
}

void event_loop_access::unwatch_current(event_loop& loop) noexcept {
    auto* e = loop.impl_->current;
    if (e == nullptr || e->removed || e->dormant)
        return;
    (void)::epoll_ctl(loop.impl_->epoll.get(), EPOLL_CTL_DEL, e->fd, nullptr);
    e->dormant = true;
}

void event_loop_access::link(event_loop& loop, const registration& main, registration&& extra) noexcept {
    auto* const sl = loop.impl_->find(main.id_);
    if (sl == nullptr || extra.loop_ != &loop)
        return;
    sl->e->linked = extra.id_;
    extra.loop_ = nullptr;
}

}  // namespace detail

registration::~registration() {
    reset();
}

registration::registration(registration&& o) noexcept : loop_{o.loop_}, id_{o.id_} {
    o.loop_ = nullptr;
}

registration& registration::operator=(registration&& o) noexcept {
    if (this != &o) {
        reset();
        loop_ = o.loop_;
        id_ = o.id_;
        o.loop_ = nullptr;
    }
    return *this;
}

void registration::reset() noexcept {
    if (loop_ != nullptr)
        loop_->remove(id_);
    loop_ = nullptr;
}

}  // namespace io
