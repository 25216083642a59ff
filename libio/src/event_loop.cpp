// SPDX-License-Identifier: MIT
#include <io/card_monitor.hpp>
#include <io/event_loop.hpp>
#include <io/line_request.hpp>
#include <io/serial_port.hpp>

#include "error.hpp"
#include "sys.hpp"

#include <array>
#include <cerrno>
#include <cstdint>
#include <string>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <unordered_map>
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
        fd_callback on_fd;
        timer_callback on_timer;
    };

    unique_fd epoll{::epoll_create1(EPOLL_CLOEXEC)};
    unique_fd wake{::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
    std::unordered_map<std::uint64_t, std::shared_ptr<entry>> entries;
    std::uint64_t next_id = 1;
    bool stopping = false;

    std::uint64_t add(int fd, std::uint32_t events, std::shared_ptr<entry> e) {
        const auto id = next_id++;
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = id;
        if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
            detail::throw_errno(errno, "event loop: watch fd " + std::to_string(fd));
        entries.emplace(id, std::move(e));
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

std::size_t event_loop::run_once(std::chrono::milliseconds timeout, std::error_code& ec) noexcept {
    ec.clear();
    std::array<epoll_event, 32> evs{};
    const int ms = timeout.count() < 0 ? -1 : static_cast<int>(std::min<std::int64_t>(timeout.count(), INT32_MAX));
    const int n = detail::sys().epoll_wait(impl_->epoll.get(), evs.data(), static_cast<int>(evs.size()), ms);
    if (n < 0) {
        if (errno != EINTR)  // a signal only cuts the wait short
            ec = detail::errno_code(errno);
        return 0;
    }
    std::size_t ran = 0;
    for (int i = 0; i < n; ++i) {
        const auto& ev = evs[static_cast<std::size_t>(i)];
        if (ev.data.u64 == stop_id) {
            std::uint64_t v;
            (void)detail::sys().read(impl_->wake.get(), &v, sizeof v);
            impl_->stopping = true;
            continue;
        }
        // Looked up afresh: an earlier callback of this batch may have removed it.
        const auto it = impl_->entries.find(ev.data.u64);
        if (it == impl_->entries.end())
            continue;
        const auto e = it->second;  // keeps the callback alive if it removes itself
        if (e->timer) {
            std::uint64_t expirations;
            if (detail::sys().read(e->fd, &expirations, sizeof expirations) != sizeof expirations)
                continue;  // spurious: the timer was re-armed or read already
            if (e->once)
                impl_->entries.erase(ev.data.u64);
            e->on_timer();
        } else {
            e->on_fd(readiness{ev.events});
        }
        ++ran;
    }
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
    while (!impl_->stopping)
        run_once(std::chrono::milliseconds{-1});
    impl_->stopping = false;
}

void event_loop::stop() noexcept {
    const std::uint64_t one = 1;
    (void)!::write(impl_->wake.get(), &one, sizeof one);
}

int event_loop::fd() const noexcept {
    return impl_->epoll.get();
}

void event_loop::remove(std::uint64_t id) noexcept {
    const auto it = impl_->entries.find(id);
    if (it == impl_->entries.end())
        return;
    // The fd may already be closed by its owner; then epoll dropped it itself.
    (void)::epoll_ctl(impl_->epoll.get(), EPOLL_CTL_DEL, it->second->fd, nullptr);
    impl_->entries.erase(it);
}

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

registration on_edge_events(event_loop& loop, line_request& request,
                            std::function<void(std::span<const edge_event>, std::error_code)> cb,
                            std::size_t batch) {
    if (!cb)
        throw invalid_argument("on_edge_events: the callback is empty");
    if (batch == 0)
        throw invalid_argument("on_edge_events: the batch must hold at least one event");
    auto buffer = std::make_shared<std::vector<edge_event>>(batch);
    const int epfd = loop.fd();
    return loop.watch(request.fd(), ready::in, [&request, buffer, epfd, cb = std::move(cb)](readiness r) {
        std::error_code ec;
        const int fd = request.fd();
        const auto n = request.read_edge_events(*buffer, ec);
        if (n > 0)
            cb(std::span<const edge_event>(buffer->data(), n), {});
        if (!ec && n == 0 && r.hangup())
            ec = detail::errno_code(ENODEV);
        if (ec) {
            // A failed request stays failed: stop watching it rather than
            // wake for it forever; the registration is left for the owner.
            (void)::epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr);
            cb({}, ec);
        }
    });
}

registration on_card_events(event_loop& loop, card_monitor& monitor,
                            std::function<void(const card_event*, std::error_code)> cb) {
    if (!cb)
        throw invalid_argument("on_card_events: the callback is empty");
    return loop.watch(monitor.fd(), ready::in, [&monitor, cb = std::move(cb)](readiness) {
        std::error_code ec;
        const auto events = monitor.read_events(ec);
        for (const auto& e : events)
            cb(&e, {});
        if (ec)
            cb(nullptr, ec);
    });
}

registration on_serial_data(event_loop& loop, serial_port& port, std::function<void(std::error_code)> cb) {
    if (!cb)
        throw invalid_argument("on_serial_data: the callback is empty");
    const int epfd = loop.fd();
    const int fd = port.fd();
    return loop.watch(fd, ready::in, [epfd, fd, cb = std::move(cb)](readiness r) {
        if (r.hangup()) {  // a tty hangs up when its device goes away
            (void)::epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr);
            cb(detail::errno_code(ENODEV));
            return;
        }
        cb({});
    });
}

registration on_modem_change(event_loop& loop, serial_port& port, std::chrono::milliseconds period,
                             std::function<void(const modem_lines&, std::error_code)> cb) {
    if (!cb)
        throw invalid_argument("on_modem_change: the callback is empty");
    if (period.count() <= 0)
        throw invalid_argument("on_modem_change: the sampling period must be positive");
    struct state {
        modem_lines last;
        bool failed = false;
    };
    auto st = std::make_shared<state>();
    st->last = port.modem();
    return loop.call_every(period, [&port, st, cb = std::move(cb)] {
        if (st->failed)
            return;
        try {
            const auto now = port.modem();
            if (!(now == st->last)) {
                st->last = now;
                cb(now, {});
            }
        } catch (const std::system_error& e) {
            st->failed = true;
            cb(st->last, e.code());
        }
    });
}

}  // namespace io
