// SPDX-License-Identifier: MIT
// Digital I/O on a virtual card of iocard.ko (cos32, OUTn wired to INn), in
// the test VM: the null-ioctl floor, get/set/port through libio, libgpiod's
// C++ and C APIs and the raw GPIO v2 ioctl, loopback edge-event latency and
// event throughput. Run by bench/run-vm; runs only as root in the VM.
#include "bench_common.hpp"
#include "gpiod_c_request.hpp"

#include <io/chip.hpp>
#include <io/event_loop.hpp>
#include <io/line_request.hpp>

#include <sim_card.hpp>

#include <gpiod.h>
#include <gpiod.hpp>
#include <linux/gpio.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;

// Every n-th iteration is timed on its own for the histograms; the others
// run bare so that Google Benchmark's time per iteration stays the call's.
constexpr std::int64_t sample_every = 8;

struct card {
    io::test::sim_card sim{"cos32"};
    std::vector<unsigned> in, out;  // offsets of IN0..31 and OUT0..31
    card() {
        sim.loopback(true);
        // The loops toggle a line as fast as its events come back (and the
        // sweep up to 100000/s): far above the default chatter guard, which
        // would turn the line's interrupt off. Measured here is delivery.
        sim.cos_max_rate(0);
        io::chip c{sim.chip_path()};
        in = c.find_port("IN").lines;
        out = c.find_port("OUT").lines;
    }
    const std::string& path() const { return sim.chip_path(); }
};

card& the_card() {
    static card c;
    return c;
}

// The raw GPIO v2 uAPI, as a program without any library would use it.
int raw_request_on(const card& cd, const std::vector<unsigned>& offsets, bool output, bool edges = false,
                   unsigned buffer = 0) {
    const int cfd = ::open(cd.path().c_str(), O_RDWR | O_CLOEXEC);
    if (cfd < 0)
        throw std::system_error(errno, std::system_category(), "open " + cd.path());
    gpio_v2_line_request req{};
    for (std::size_t i = 0; i < offsets.size(); ++i)
        req.offsets[i] = offsets[i];
    req.num_lines = static_cast<std::uint32_t>(offsets.size());
    std::strcpy(req.consumer, "bench-raw");
    req.config.flags = output ? GPIO_V2_LINE_FLAG_OUTPUT : GPIO_V2_LINE_FLAG_INPUT;
    if (edges)
        req.config.flags |= GPIO_V2_LINE_FLAG_EDGE_RISING | GPIO_V2_LINE_FLAG_EDGE_FALLING;
    req.event_buffer_size = buffer;
    const int r = ::ioctl(cfd, GPIO_V2_GET_LINE_IOCTL, &req);
    const int err = errno;
    ::close(cfd);
    if (r < 0)
        throw std::system_error(err, std::system_category(), "GPIO_V2_GET_LINE_IOCTL");
    return req.fd;
}

int raw_request(const std::vector<unsigned>& offsets, bool output, bool edges = false, unsigned buffer = 0) {
    return raw_request_on(the_card(), offsets, output, edges, buffer);
}

struct fd_guard {
    int fd;
    explicit fd_guard(int f) : fd{f} {}
    fd_guard(fd_guard&& o) noexcept : fd{std::exchange(o.fd, -1)} {}
    fd_guard(const fd_guard&) = delete;
    ~fd_guard() {
        if (fd >= 0)
            ::close(fd);
    }
};

io::line_request libio_request_on(const card& cd, const std::vector<unsigned>& offsets, const io::line_config& cfg) {
    io::chip c{cd.path()};
    auto b = c.prepare_request();
    b.consumer("bench-libio");
    for (auto o : offsets)
        b.add(o, cfg);
    return b.make();
}

io::line_request libio_request(const std::vector<unsigned>& offsets, const io::line_config& cfg) {
    io::chip c{the_card().path()};
    auto b = c.prepare_request();
    b.consumer("bench-libio");
    for (auto o : offsets)
        b.add(o, cfg);
    return b.make();
}

gpiod::line_request gpiodcxx_request(const std::vector<unsigned>& offsets, bool output, bool edges = false) {
    gpiod::line_settings s;
    s.set_direction(output ? gpiod::line::direction::OUTPUT : gpiod::line::direction::INPUT);
    if (edges)
        s.set_edge_detection(gpiod::line::edge::BOTH);
    gpiod::line::offsets offs(offsets.begin(), offsets.end());
    return gpiod::chip{the_card().path()}.prepare_request().set_consumer("bench-gpiodcxx").add_line_settings(offs, s).do_request();
}

// libgpiod C's request of `offsets` on a card (the first by default).
struct gpiod_c_request : bench::gpiod_c_request {
    gpiod_c_request(const std::vector<unsigned>& offsets, bool output, bool edges = false,
                    const std::string& path = the_card().path())
        : bench::gpiod_c_request(path, offsets, output, edges, "bench-gpiod-c") {}
};

// Runs op() in the benchmark loop, timing every sample_every-th call alone.
template <typename Op>
void timed_loop(benchmark::State& state, Op&& op) {
    io::rt::latency_histogram h;
    std::int64_t i = 0;
    std::uint64_t allocs = 0;
    for (auto _ : state) {
        if (++i % sample_every == 0) {
            const auto a0 = bench::allocations();
            const auto t0 = bench::now_ns();
            op();
            h.record_ns(bench::now_ns() - t0);
            allocs += bench::allocations() - a0;
        } else {
            op();
        }
    }
    // Counted around the sampled calls only (Google Benchmark's own loop
    // allocates now and then), after the first few (lazy set-up).
    state.counters["allocs_per_op"] =
        static_cast<double>(allocs) / static_cast<double>(std::max<std::int64_t>(i / sample_every, 1));
    bench::publish(state, h);
}

// ---- the floor: an ioctl the line request rejects (EINVAL after the fd
// lookup and gpiolib's own checks). Nothing can do less per call.

void floor_null_ioctl(benchmark::State& state) {
    fd_guard fd{raw_request({the_card().in[0]}, false)};
    timed_loop(state, [&] { benchmark::DoNotOptimize(::ioctl(fd.fd, _IO(0xB4, 0x7f), nullptr)); });
}

// ---- get one line

void get_raw(benchmark::State& state) {
    fd_guard fd{raw_request({the_card().in[0]}, false)};
    timed_loop(state, [&] {
        gpio_v2_line_values v{0, 1};
        if (::ioctl(fd.fd, GPIO_V2_LINE_GET_VALUES_IOCTL, &v) < 0)
            state.SkipWithError("GET_VALUES failed");
        benchmark::DoNotOptimize(v.bits);
    });
}

void get_libio(benchmark::State& state) {
    auto req = libio_request({the_card().in[0]}, io::line_config::input());
    const unsigned line = the_card().in[0];
    timed_loop(state, [&] { benchmark::DoNotOptimize(req.get(line)); });
}

void get_gpiodcxx(benchmark::State& state) {
    auto req = gpiodcxx_request({the_card().in[0]}, false);
    const unsigned line = the_card().in[0];
    timed_loop(state, [&] { benchmark::DoNotOptimize(req.get_value(line)); });
}

void get_gpiodc(benchmark::State& state) {
    gpiod_c_request r{{the_card().in[0]}, false};
    const unsigned line = the_card().in[0];
    timed_loop(state, [&] { benchmark::DoNotOptimize(gpiod_line_request_get_value(r.req, line)); });
}

// ---- set one line

void set_raw(benchmark::State& state) {
    fd_guard fd{raw_request({the_card().out[0]}, true)};
    std::uint64_t b = 0;
    timed_loop(state, [&] {
        b ^= 1;
        gpio_v2_line_values v{b, 1};
        if (::ioctl(fd.fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v) < 0)
            state.SkipWithError("SET_VALUES failed");
    });
}

void set_libio(benchmark::State& state) {
    auto req = libio_request({the_card().out[0]}, io::line_config::output());
    const unsigned line = the_card().out[0];
    bool b = false;
    timed_loop(state, [&] { req.set(line, b = !b); });
}

void set_gpiodcxx(benchmark::State& state) {
    auto req = gpiodcxx_request({the_card().out[0]}, true);
    const unsigned line = the_card().out[0];
    bool b = false;
    timed_loop(state, [&] {
        b = !b;
        req.set_value(line, b ? gpiod::line::value::ACTIVE : gpiod::line::value::INACTIVE);
    });
}

void set_gpiodc(benchmark::State& state) {
    gpiod_c_request r{{the_card().out[0]}, true};
    const unsigned line = the_card().out[0];
    bool b = false;
    timed_loop(state, [&] {
        b = !b;
        gpiod_line_request_set_value(r.req, line, b ? GPIOD_LINE_VALUE_ACTIVE : GPIOD_LINE_VALUE_INACTIVE);
    });
}

// ---- a 32-line port in one call

void port_read_raw(benchmark::State& state) {
    fd_guard fd{raw_request(the_card().in, false)};
    timed_loop(state, [&] {
        gpio_v2_line_values v{0, 0xffffffffULL};
        if (::ioctl(fd.fd, GPIO_V2_LINE_GET_VALUES_IOCTL, &v) < 0)
            state.SkipWithError("GET_VALUES failed");
        benchmark::DoNotOptimize(v.bits);
    });
}

void port_read_libio(benchmark::State& state) {
    io::chip c{the_card().path()};
    const auto port = c.find_port("IN");
    auto req = libio_request(port.lines, io::line_config::input());
    timed_loop(state, [&] { benchmark::DoNotOptimize(req.read_port(port)); });
}

void port_read_gpiodcxx(benchmark::State& state) {
    auto req = gpiodcxx_request(the_card().in, false);
    gpiod::line::offsets offs(the_card().in.begin(), the_card().in.end());
    gpiod::line::values vals(offs.size());
    timed_loop(state, [&] {
        req.get_values(offs, vals);
        benchmark::DoNotOptimize(vals.data());
    });
}

void port_read_gpiodc(benchmark::State& state) {
    gpiod_c_request r{the_card().in, false};
    std::vector<gpiod_line_value> vals(the_card().in.size());
    timed_loop(state, [&] {
        gpiod_line_request_get_values_subset(r.req, the_card().in.size(), the_card().in.data(), vals.data());
        benchmark::DoNotOptimize(vals.data());
    });
}

void port_write_raw(benchmark::State& state) {
    fd_guard fd{raw_request(the_card().out, true)};
    std::uint64_t x = 0;
    timed_loop(state, [&] {
        x = (x + 0x9e3779b9ULL) & 0xffffffffULL;
        gpio_v2_line_values v{x, 0xffffffffULL};
        if (::ioctl(fd.fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v) < 0)
            state.SkipWithError("SET_VALUES failed");
    });
}

void port_write_libio(benchmark::State& state) {
    io::chip c{the_card().path()};
    const auto port = c.find_port("OUT");
    auto req = libio_request(port.lines, io::line_config::output());
    std::uint64_t x = 0;
    timed_loop(state, [&] {
        x = (x + 0x9e3779b9ULL) & 0xffffffffULL;
        req.write_port(port, x);
    });
}

void port_write_gpiodcxx(benchmark::State& state) {
    auto req = gpiodcxx_request(the_card().out, true);
    gpiod::line::offsets offs(the_card().out.begin(), the_card().out.end());
    gpiod::line::values vals(offs.size(), gpiod::line::value::INACTIVE);
    std::uint64_t x = 0;
    timed_loop(state, [&] {
        x = (x + 0x9e3779b9ULL) & 0xffffffffULL;
        for (std::size_t i = 0; i < vals.size(); ++i)
            vals[i] = ((x >> i) & 1U) != 0 ? gpiod::line::value::ACTIVE : gpiod::line::value::INACTIVE;
        req.set_values(offs, vals);
    });
}

void port_write_gpiodc(benchmark::State& state) {
    gpiod_c_request r{the_card().out, true};
    std::vector<gpiod_line_value> vals(the_card().out.size());
    std::uint64_t x = 0;
    timed_loop(state, [&] {
        x = (x + 0x9e3779b9ULL) & 0xffffffffULL;
        for (std::size_t i = 0; i < vals.size(); ++i)
            vals[i] = ((x >> i) & 1U) != 0 ? GPIOD_LINE_VALUE_ACTIVE : GPIOD_LINE_VALUE_INACTIVE;
        gpiod_line_request_set_values_subset(r.req, vals.size(), the_card().out.data(), vals.data());
    });
}

// The gpio character device's interrupt threads of iocard's lines
// ("irq/N-consumer", one per requested line with edge detection), onto
// the benchmark's CPU ($LIBIO_BENCH_CPU), beside the receiver and the card's
// interrupt (raised where OUT0 is set). A thread takes its irq's affinity
// (any CPU) at its first wake-up, so this is done after a first event.
// Left to the scheduler, a thread on the other vCPU woke its receiver
// through an inter-processor interrupt, some 200 us more under TCG, and that
// receiver's whole repetition was three times slower (seen on one receiver
// or another in three of five repetitions). Returns how many were pinned.
int pin_card_irq_threads() {
    const char* cpu_env = std::getenv("LIBIO_BENCH_CPU");
    if (cpu_env == nullptr)
        return 0;
    std::set<std::string> irqs;  // iocard's, as /proc/interrupts lists them: "  30:  0  0  iocard  0  label"
    std::ifstream in("/proc/interrupts");
    for (std::string line; std::getline(in, line);) {
        std::istringstream ls(line);
        std::string irq, word;
        ls >> irq;
        if (irq.empty() || irq.back() != ':')
            continue;
        irq.pop_back();
        while (ls >> word)
            if (word == "iocard") {
                irqs.insert(irq);
                break;
            }
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(static_cast<std::size_t>(std::atoi(cpu_env)), &set);
    int pinned = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
        const auto name = e.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos)
            continue;
        std::ifstream f(e.path() / "comm");
        std::string comm;
        std::getline(f, comm);
        if (!comm.starts_with("irq/"))
            continue;
        const auto dash = comm.find('-');
        if (dash == std::string::npos || irqs.count(comm.substr(4, dash - 4)) == 0)
            continue;
        if (::sched_setaffinity(std::atoi(name.c_str()), sizeof set, &set) == 0)
            ++pinned;
    }
    return pinned;
}

// ---- loopback edge latency: from just before OUT0 is set (raw ioctl, the
// same for every case) to the IN0 event read by the receiving code. Also
// split at the kernel's event timestamp (taken in the interrupt): "_irq"
// is set-to-interrupt, "_wake" interrupt-to-user.

// The OUT0 setter is requested before the receiver's request: requesting an
// output drives it (to 0), which would otherwise be an edge of its own.
template <typename Receive>
void edge_loop(benchmark::State& state, const fd_guard& out, Receive&& receive) {
    io::rt::latency_histogram total, irq, wake;
    std::uint64_t b = 0;
    std::int64_t n = 0;
    std::uint64_t allocs = 0;
    {  // a first event, untimed: the interrupt thread exists and has woken once
        b ^= 1;
        gpio_v2_line_values v{b, 1};
        ::ioctl(out.fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v);
        std::uint64_t ts = 0;
        if (!receive(ts)) {
            state.SkipWithError("no edge event within 2 s");
            return;
        }
    }
    state.counters["irq_threads_pinned"] = pin_card_irq_threads();
    for (auto _ : state) {
        const auto a0 = bench::allocations();
        b ^= 1;
        gpio_v2_line_values v{b, 1};
        const auto t0 = bench::now_ns();
        ::ioctl(out.fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v);
        std::uint64_t ts = 0;
        if (!receive(ts)) {
            state.SkipWithError("no edge event within 2 s");
            break;
        }
        const auto t1 = bench::now_ns();
        state.SetIterationTime(static_cast<double>(t1 - t0) * 1e-9);
        total.record_ns(t1 - t0);
        irq.record_ns(static_cast<std::int64_t>(ts) - t0);
        wake.record_ns(t1 - static_cast<std::int64_t>(ts));
        if (++n > 16)  // steady state: after the first events
            allocs += bench::allocations() - a0;
    }
    state.counters["allocs_per_event"] = n > 16 ? static_cast<double>(allocs) / static_cast<double>(n - 16) : 0.0;
    bench::publish(state, total);
    bench::publish(state, irq, "_irq");
    bench::publish(state, wake, "_wake");
}

void edge_raw_poll_read(benchmark::State& state) {
    fd_guard out{raw_request({the_card().out[0]}, true)};
    fd_guard in{raw_request({the_card().in[0]}, false, true)};
    edge_loop(state, out, [&](std::uint64_t& ts) {
        pollfd p{in.fd, POLLIN, 0};
        if (::poll(&p, 1, 2000) != 1)
            return false;
        gpio_v2_line_event ev;
        if (::read(in.fd, &ev, sizeof ev) != sizeof ev)
            return false;
        ts = ev.timestamp_ns;
        return true;
    });
}

void edge_libio_wait(benchmark::State& state) {
    fd_guard out{raw_request({the_card().out[0]}, true)};
    auto req = libio_request({the_card().in[0]}, io::line_config::input(io::edge::both));
    std::array<io::edge_event, 16> evs;
    edge_loop(state, out, [&](std::uint64_t& ts) {
        std::error_code ec;
        if (!req.wait_edge_events(2s, ec))
            return false;
        const auto k = req.read_edge_events(evs, ec);
        if (k == 0)
            return false;
        ts = evs[0].timestamp_ns;
        return true;
    });
    state.counters["lost"] = static_cast<double>(req.lost_events());
}

void edge_libio_event_loop(benchmark::State& state) {
    fd_guard out{raw_request({the_card().out[0]}, true)};
    auto req = libio_request({the_card().in[0]}, io::line_config::input(io::edge::both));
    io::event_loop loop;
    std::uint64_t last_ts = 0;
    bool got = false;
    auto reg = io::on_edge_events(loop, req, [&](std::span<const io::edge_event> evs, std::error_code) {
        if (!evs.empty()) {
            last_ts = evs.back().timestamp_ns;
            got = true;
        }
    });
    edge_loop(state, out, [&](std::uint64_t& ts) {
        got = false;
        std::error_code ec;
        while (!got)
            if (loop.run_once(2000ms, ec) == 0)
                return false;
        ts = last_ts;
        return true;
    });
}

void edge_gpiodcxx(benchmark::State& state) {
    fd_guard out{raw_request({the_card().out[0]}, true)};
    auto req = gpiodcxx_request({the_card().in[0]}, false, true);
    gpiod::edge_event_buffer buf(16);
    edge_loop(state, out, [&](std::uint64_t& ts) {
        if (!req.wait_edge_events(2s))
            return false;
        if (req.read_edge_events(buf) == 0)
            return false;
        ts = buf.get_event(0).timestamp_ns();
        return true;
    });
}

void edge_gpiodc(benchmark::State& state) {
    fd_guard out{raw_request({the_card().out[0]}, true)};
    gpiod_c_request r{{the_card().in[0]}, false, true};
    gpiod_edge_event_buffer* buf = gpiod_edge_event_buffer_new(16);
    edge_loop(state, out, [&](std::uint64_t& ts) {
        if (gpiod_line_request_wait_edge_events(r.req, 2'000'000'000) != 1)
            return false;
        if (gpiod_line_request_read_edge_events(r.req, buf, 16) <= 0)
            return false;
        ts = gpiod_edge_event_get_timestamp_ns(gpiod_edge_event_buffer_get_event(buf, 0));
        return true;
    });
    gpiod_edge_event_buffer_free(buf);
}

// ---- paired: all implementations in one loop, in an order that rotates
// every iteration, each call timed on its own (each sample includes one
// clock read and one indirect call, alike for all). The machine's slow and
// fast moments fall on every implementation alike, so the ratios of their
// medians hold on a shared machine where separately run cases drift apart.

struct contender {
    const char* name;
    std::function<std::int64_t()> op;  // returns the kernel timestamp of an edge, or 0
    // Edges: a receiver reads every event queued and times the newest; the
    // events beyond one per toggle are counted here (there should be none).
    std::shared_ptr<std::uint64_t> extra = std::make_shared<std::uint64_t>(0);
};

void paired_loop(benchmark::State& state, std::vector<contender>& cs, bool edges) {
    const std::size_t n = cs.size();
    std::vector<io::rt::latency_histogram> total(n), irq(n), wake(n);
    std::vector<std::uint64_t> allocs(n, 0);
    std::int64_t it = 0;
    if (edges) {  // a first event each, untimed; then their interrupt threads go beside the receivers
        for (auto& c : cs)
            if (c.op() == 0) {
                state.SkipWithError("no edge event within 2 s");
                return;
            }
        for (auto& c : cs)
            *c.extra = 0;
        state.counters["irq_threads_pinned"] = pin_card_irq_threads();
    }
    for (auto _ : state) {
        for (std::size_t j = 0; j < n; ++j) {
            const std::size_t k = (static_cast<std::size_t>(it) + j) % n;
            const auto a0 = bench::allocations();
            const auto t0 = bench::now_ns();
            const auto ts = cs[k].op();
            const auto t1 = bench::now_ns();
            if (edges && ts == 0) {
                state.SkipWithError("no edge event within 2 s");
                return;
            }
            total[k].record_ns(t1 - t0);
            if (edges) {
                irq[k].record_ns(ts - t0);
                wake[k].record_ns(t1 - ts);
            }
            if (it >= 16)  // steady state: after the first calls
                allocs[k] += bench::allocations() - a0;
        }
        ++it;
    }
    for (std::size_t k = 0; k < n; ++k) {
        const std::string sfx = std::string("_") + cs[k].name;
        if (edges)
            state.counters["extra_events" + sfx] = static_cast<double>(*cs[k].extra);
        state.counters["allocs" + sfx] =
            it > 16 ? static_cast<double>(allocs[k]) / static_cast<double>(it - 16) : 0.0;
        bench::publish(state, total[k], sfx);
        if (edges) {
            bench::publish(state, irq[k], sfx + "_irq");
            bench::publish(state, wake[k], sfx + "_wake");
        }
    }
}

// Each implementation works on a card of its own (cos32 with loopback, all
// alike), since a line has one holder at a time.
card& card_of(std::size_t k) {
    static std::array<std::unique_ptr<card>, 6> cards;
    if (!cards[k])
        cards[k] = std::make_unique<card>();
    return *cards[k];
}

gpiod::line_request gpiodcxx_on(const card& cd, const std::vector<unsigned>& offsets, bool output, bool edges) {
    gpiod::line_settings st;
    st.set_direction(output ? gpiod::line::direction::OUTPUT : gpiod::line::direction::INPUT);
    if (edges)
        st.set_edge_detection(gpiod::line::edge::BOTH);
    gpiod::line::offsets offs(offsets.begin(), offsets.end());
    return gpiod::chip{cd.path()}.prepare_request().set_consumer("bench-gpiodcxx").add_line_settings(offs, st).do_request();
}

// What one implementation does in one paired case: `lines` of its card are
// requested (inputs, outputs, or inputs with edges), op() is timed.
enum class what { get, set, port_read, port_write, edge };

std::vector<contender> contenders(what w, std::vector<std::shared_ptr<void>>& keep) {
    const bool edge = w == what::edge;
    const bool out = w == what::set || w == what::port_write;
    const bool port = w == what::port_read || w == what::port_write;
    auto lines_of = [&](const card& cd) {
        if (port)
            return out ? cd.out : cd.in;
        return std::vector<unsigned>{out ? cd.out[0] : cd.in[0]};
    };
    const std::uint64_t all = port ? 0xffffffffULL : 1;
    // Each implementation drives the same sequence of values (edges: its
    // card's OUT0 toggles every time).
    auto next = [port](std::uint64_t v) { return port ? (v + 0x9e3779b9ULL) & 0xffffffffULL : v ^ 1U; };
    // Edges: each card's OUT0 setter, requested before the receiver's lines
    // (requesting an output drives it, an edge of its own); toggle() flips
    // it, an edge on IN0.
    auto setter_of = [edge](const card& cd) {
        return std::make_shared<fd_guard>(fd_guard{edge ? raw_request_on(cd, {cd.out[0]}, true) : -1});
    };
    auto toggle = [next](const fd_guard& setter, std::uint64_t& v) {
        v = next(v);
        gpio_v2_line_values s{v, 1};
        ::ioctl(setter.fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &s);
    };
    std::vector<contender> cs;

    // raw GPIO v2 ioctl (edges: poll + read)
    {
        const card& cd = card_of(0);
        auto value = std::make_shared<std::uint64_t>(0);
        auto setter = setter_of(cd);
        auto fd = std::make_shared<fd_guard>(fd_guard{raw_request_on(cd, lines_of(cd), out, edge)});
        auto raw_evs = std::make_shared<std::array<gpio_v2_line_event, 16>>();
        auto extra = std::make_shared<std::uint64_t>(0);
        keep.insert(keep.end(), {fd, setter, raw_evs});
        cs.push_back({"raw_ioctl", [=] {
                          gpio_v2_line_values v{out ? *value : 0, all};
                          if (edge) {
                              toggle(*setter, *value);
                              pollfd p{fd->fd, POLLIN, 0};
                              if (::poll(&p, 1, 2000) != 1)
                                  return std::int64_t{0};
                              const auto r = ::read(fd->fd, raw_evs->data(), sizeof *raw_evs);
                              if (r < static_cast<ssize_t>(sizeof(gpio_v2_line_event)))
                                  return std::int64_t{0};
                              const auto n = static_cast<std::size_t>(r) / sizeof(gpio_v2_line_event);
                              *extra += n - 1;
                              return static_cast<std::int64_t>((*raw_evs)[n - 1].timestamp_ns);
                          }
                          ::ioctl(fd->fd, out ? GPIO_V2_LINE_SET_VALUES_IOCTL : GPIO_V2_LINE_GET_VALUES_IOCTL, &v);
                          benchmark::DoNotOptimize(v.bits);
                          *value = next(*value);
                          return std::int64_t{0};
                      },
                      extra});
    }
    // An application's own epoll loop (edges only): epoll_wait on a set
    // holding the line request, then its read. What the kernel's epoll path
    // costs beside poll's, measured in the same loop.
    if (edge) {
        const card& cd = card_of(5);
        auto value = std::make_shared<std::uint64_t>(0);
        auto setter = setter_of(cd);
        auto fd = std::make_shared<fd_guard>(fd_guard{raw_request_on(cd, lines_of(cd), false, true)});
        auto ep = std::make_shared<fd_guard>(fd_guard{::epoll_create1(EPOLL_CLOEXEC)});
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd->fd;
        if (ep->fd < 0 || ::epoll_ctl(ep->fd, EPOLL_CTL_ADD, fd->fd, &ev) != 0)
            throw std::system_error(errno, std::system_category(), "epoll for the raw epoll receiver");
        auto raw_evs = std::make_shared<std::array<gpio_v2_line_event, 16>>();
        auto extra = std::make_shared<std::uint64_t>(0);
        keep.insert(keep.end(), {fd, ep, setter, raw_evs});
        cs.push_back({"raw_epoll", [=] {
                          toggle(*setter, *value);
                          std::array<epoll_event, 32> ready;
                          const int m = ::epoll_wait(ep->fd, ready.data(), static_cast<int>(ready.size()), 2000);
                          if (m != 1)
                              return std::int64_t{0};
                          const auto r = ::read(ready[0].data.fd, raw_evs->data(), sizeof *raw_evs);
                          if (r < static_cast<ssize_t>(sizeof(gpio_v2_line_event)))
                              return std::int64_t{0};
                          const auto n = static_cast<std::size_t>(r) / sizeof(gpio_v2_line_event);
                          *extra += n - 1;
                          return static_cast<std::int64_t>((*raw_evs)[n - 1].timestamp_ns);
                      },
                      extra});
    }
    // libio
    {
        const card& cd = card_of(1);
        auto value = std::make_shared<std::uint64_t>(0);
        io::chip chip{cd.path()};
        const auto p = std::make_shared<io::port>(chip.find_port(out ? "OUT" : "IN"));
        auto setter = setter_of(cd);
        auto req = std::make_shared<io::line_request>(
            libio_request_on(cd, lines_of(cd), edge ? io::line_config::input(io::edge::both)
                                                    : out ? io::line_config::output() : io::line_config::input()));
        auto evs = std::make_shared<std::array<io::edge_event, 16>>();
        auto extra = std::make_shared<std::uint64_t>(0);
        keep.insert(keep.end(), {p, req, setter, evs});
        const unsigned line = lines_of(cd)[0];
        cs.push_back({"libio", [=] {
                          if (edge) {
                              toggle(*setter, *value);
                              std::error_code ec;
                              if (!req->wait_edge_events(2s, ec))
                                  return std::int64_t{0};
                              const auto n = req->read_edge_events(*evs, ec);
                              if (n == 0)
                                  return std::int64_t{0};
                              *extra += n - 1;
                              return static_cast<std::int64_t>((*evs)[n - 1].timestamp_ns);
                          }
                          if (port && out)
                              req->write_port(*p, *value);
                          else if (port)
                              benchmark::DoNotOptimize(req->read_port(*p));
                          else if (out)
                              req->set(line, (*value & 1U) != 0);
                          else
                              benchmark::DoNotOptimize(req->get(line));
                          *value = next(*value);
                          return std::int64_t{0};
                      },
                      extra});
    }
    // libgpiod C++
    {
        const card& cd = card_of(2);
        auto value = std::make_shared<std::uint64_t>(0);
        auto setter = setter_of(cd);
        auto req = std::make_shared<gpiod::line_request>(gpiodcxx_on(cd, lines_of(cd), out, edge));
        const auto lines = lines_of(cd);
        auto offs = std::make_shared<gpiod::line::offsets>(lines.begin(), lines.end());
        auto vals = std::make_shared<gpiod::line::values>(offs->size());
        auto buf = std::make_shared<gpiod::edge_event_buffer>(16);
        auto extra = std::make_shared<std::uint64_t>(0);
        keep.insert(keep.end(), {req, offs, vals, buf, setter});
        cs.push_back({"gpiod_cxx", [=] {
                          if (edge) {
                              toggle(*setter, *value);
                              if (!req->wait_edge_events(2s))
                                  return std::int64_t{0};
                              const auto n = req->read_edge_events(*buf);
                              if (n == 0)
                                  return std::int64_t{0};
                              *extra += n - 1;
                              return static_cast<std::int64_t>(buf->get_event(static_cast<unsigned>(n - 1)).timestamp_ns());
                          }
                          if (!port && out) {  // one line: the one-line calls, as an application would
                              req->set_value((*offs)[0], (*value & 1U) != 0 ? gpiod::line::value::ACTIVE
                                                                            : gpiod::line::value::INACTIVE);
                          } else if (!port) {
                              benchmark::DoNotOptimize(req->get_value((*offs)[0]));
                          } else if (out) {
                              for (std::size_t i = 0; i < vals->size(); ++i)
                                  (*vals)[i] = ((*value >> i) & 1U) != 0 ? gpiod::line::value::ACTIVE
                                                                         : gpiod::line::value::INACTIVE;
                              req->set_values(*offs, *vals);
                          } else {
                              req->get_values(*offs, *vals);
                              benchmark::DoNotOptimize(vals->data());
                          }
                          *value = next(*value);
                          return std::int64_t{0};
                      },
                      extra});
    }
    // libgpiod C
    {
        const card& cd = card_of(3);
        auto value = std::make_shared<std::uint64_t>(0);
        auto setter = setter_of(cd);
        auto offs = std::make_shared<std::vector<unsigned>>(lines_of(cd));
        auto req = std::make_shared<gpiod_c_request>(*offs, out, edge, cd.path());
        auto vals = std::make_shared<std::vector<gpiod_line_value>>(offs->size());
        auto buf = std::shared_ptr<gpiod_edge_event_buffer>(gpiod_edge_event_buffer_new(16), gpiod_edge_event_buffer_free);
        auto extra = std::make_shared<std::uint64_t>(0);
        keep.insert(keep.end(), {offs, req, vals, buf, setter});
        cs.push_back({"gpiod_c", [=] {
                          if (edge) {
                              toggle(*setter, *value);
                              if (gpiod_line_request_wait_edge_events(req->req, 2'000'000'000) != 1)
                                  return std::int64_t{0};
                              const int n = gpiod_line_request_read_edge_events(req->req, buf.get(), 16);
                              if (n <= 0)
                                  return std::int64_t{0};
                              *extra += static_cast<std::uint64_t>(n - 1);
                              return static_cast<std::int64_t>(gpiod_edge_event_get_timestamp_ns(
                                  gpiod_edge_event_buffer_get_event(buf.get(), static_cast<unsigned long>(n - 1))));
                          }
                          if (!port && out) {
                              gpiod_line_request_set_value(req->req, (*offs)[0],
                                                           (*value & 1U) != 0 ? GPIOD_LINE_VALUE_ACTIVE
                                                                              : GPIOD_LINE_VALUE_INACTIVE);
                          } else if (!port) {
                              benchmark::DoNotOptimize(gpiod_line_request_get_value(req->req, (*offs)[0]));
                          } else if (out) {
                              for (std::size_t i = 0; i < vals->size(); ++i)
                                  (*vals)[i] = ((*value >> i) & 1U) != 0 ? GPIOD_LINE_VALUE_ACTIVE : GPIOD_LINE_VALUE_INACTIVE;
                              gpiod_line_request_set_values_subset(req->req, offs->size(), offs->data(), vals->data());
                          } else {
                              gpiod_line_request_get_values_subset(req->req, offs->size(), offs->data(), vals->data());
                              benchmark::DoNotOptimize(vals->data());
                          }
                          *value = next(*value);
                          return std::int64_t{0};
                      },
                      extra});
    }
    // libio's event loop (edges only): on_edge_events, one run_once per edge
    if (edge) {
        const card& cd = card_of(4);
        auto value = std::make_shared<std::uint64_t>(0);
        auto setter = setter_of(cd);
        auto req = std::make_shared<io::line_request>(
            libio_request_on(cd, {cd.in[0]}, io::line_config::input(io::edge::both)));
        auto loop = std::make_shared<io::event_loop>();
        auto last_ts = std::make_shared<std::int64_t>(0);
        auto extra = std::make_shared<std::uint64_t>(0);
        auto seen = std::make_shared<std::uint64_t>(0);
        auto reg = std::make_shared<io::registration>(io::on_edge_events(
            *loop, *req, [last_ts, seen](std::span<const io::edge_event> evs, std::error_code) {
                if (!evs.empty())
                    *last_ts = static_cast<std::int64_t>(evs.back().timestamp_ns);
                *seen += evs.size();
            }));
        keep.insert(keep.end(), {req, setter, loop, last_ts, reg, seen});
        cs.push_back({"libio_event_loop", [=] {
                          toggle(*setter, *value);
                          *last_ts = 0;
                          *seen = 0;
                          std::error_code ec;
                          while (*last_ts == 0)
                              if (loop->run_once(2000ms, ec) == 0)
                                  return std::int64_t{0};
                          *extra += *seen - 1;
                          return *last_ts;
                      },
                      extra});
    }
    return cs;
}

template <what W>
void paired(benchmark::State& state) {
    std::vector<std::shared_ptr<void>> keep;
    auto cs = contenders(W, keep);
    paired_loop(state, cs, W == what::edge);
    cs.clear();
    // Newest first: what was made from an earlier object (a registration
    // on its event loop) goes before it.
    while (!keep.empty())
        keep.pop_back();
}

// ---- event throughput: a writer thread toggles OUT0 while this thread
// reads IN0's events with libio. Changes that come faster than the card or
// the kernel's irq thread deliver them are counted by iocard, and events
// dropped from a full queue show as seqno gaps: both are lost_events().
//
// rate 0: the writer goes as fast as the ioctl does. Otherwise it toggles
// on absolute deadlines `1/rate` apart: the sweep over rates shows where the
// first edges go missing. It spins on the clock to each deadline rather than
// sleeping (a timer wake-up costs some 100 us under TCG, which would cap the
// sweep near 5000/s); a deadline already passed is skipped, not caught up in
// a burst, so edges are never closer than the period.

void toggle_run(benchmark::State& state, std::uint64_t toggles, std::uint64_t rate) {
    fd_guard out{raw_request({the_card().out[0]}, true)};  // first: requesting it drives it
    io::chip c{the_card().path()};
    auto in = c.prepare_request().consumer("bench-tput").add(the_card().in[0], io::line_config::input(io::edge::both))
                  .event_buffer_size(1024).make();
    std::atomic<bool> done{false};
    std::uint64_t overruns = 0;
    std::int64_t t_last_toggle = 0;
    const auto t0 = bench::now_ns();
    std::thread writer([&] {
        // The reader is pinned (LIBIO_BENCH_CPU); the writer takes another
        // CPU, so that the two do not take turns on one.
        const auto mine = io::rt::thread_cpus();
        for (const auto cpu : io::rt::allowed_cpus())
            if (mine.size() == 1 && cpu != mine.front()) {
                io::rt::pin_to_cpu(cpu);
                break;
            }
        const std::int64_t period = rate > 0 ? static_cast<std::int64_t>(1'000'000'000 / rate) : 0;
        std::int64_t next = bench::now_ns() + period;
        std::uint64_t b = 0;
        for (std::uint64_t i = 0; i < toggles; ++i) {
            if (period > 0) {
                auto now = bench::now_ns();
                while (now < next)
                    now = bench::now_ns();
                if (now - next >= period) {  // this toggle is at least a period late
                    ++overruns;
                    next = now;
                }
                next += period;
            }
            b ^= 1;
            gpio_v2_line_values v{b, 1};
            ::ioctl(out.fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v);
        }
        t_last_toggle = bench::now_ns();
        done = true;
    });
    std::array<io::edge_event, 64> evs;
    std::uint64_t got = 0, last_seq = 0;
    std::int64_t idle_since = 0;
    std::error_code ec;
    for (;;) {
        if (in.wait_edge_events(20ms, ec)) {
            const auto k = in.read_edge_events(evs, ec);
            got += k;
            if (k > 0)
                last_seq = evs[k - 1].seqno;
            idle_since = 0;
        } else if (done) {
            if (idle_since == 0)
                idle_since = bench::now_ns();
            else if (bench::now_ns() - idle_since > 100'000'000)
                break;
        }
    }
    writer.join();
    const double secs = static_cast<double>(t_last_toggle - t0) * 1e-9;
    state.SetIterationTime(secs);
    state.counters["rate"] = static_cast<double>(rate);
    state.counters["toggles"] = static_cast<double>(toggles);
    state.counters["toggles_per_s"] = static_cast<double>(toggles) / secs;
    state.counters["events_per_s"] = static_cast<double>(got) / secs;
    state.counters["events"] = static_cast<double>(got);
    state.counters["lost"] = static_cast<double>(in.lost_events());
    // Every toggle is an event or counted as lost (iocard counts the changes
    // it could not deliver; libio adds them to lost_events()): what is left
    // is a change gone without a trace.
    state.counters["unaccounted"] = static_cast<double>(toggles - std::min(toggles, got + in.lost_events()));
    state.counters["kernel_seqno"] = static_cast<double>(last_seq);
    state.counters["writer_overruns"] = static_cast<double>(overruns);
}

void event_throughput(benchmark::State& state) {
    for (auto _ : state)
        toggle_run(state, static_cast<std::uint64_t>(state.range(0)), 0);
}

void event_rate(benchmark::State& state) {
    for (auto _ : state)
        toggle_run(state, static_cast<std::uint64_t>(state.range(1)), static_cast<std::uint64_t>(state.range(0)));
}

// Loss detection: toggles with nobody reading, into a small queue, then
// one read: every event the kernel dropped must show in lost_events().
void event_overflow(benchmark::State& state) {
    for (auto _ : state) {
        io::chip c{the_card().path()};
        auto in = c.prepare_request().consumer("bench-ovf").add(the_card().in[0], io::line_config::input(io::edge::both))
                      .event_buffer_size(16).make();
        fd_guard out{raw_request({the_card().out[0]}, true)};
        std::uint64_t b = 0;
        for (int i = 0; i < 256; ++i) {
            b ^= 1;
            gpio_v2_line_values v{b, 1};
            ::ioctl(out.fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v);
            std::this_thread::sleep_for(200us);  // slower than the irq thread, so little folds
        }
        std::this_thread::sleep_for(50ms);
        std::array<io::edge_event, 64> evs;
        std::uint64_t got = 0, last_seq = 0;
        for (std::size_t k; (k = in.read_edge_events(evs)) > 0;) {
            got += k;
            last_seq = evs[k - 1].seqno;
        }
        state.counters["toggles"] = 256;
        state.counters["events"] = static_cast<double>(got);
        state.counters["kernel_seqno"] = static_cast<double>(last_seq);
        state.counters["lost"] = static_cast<double>(in.lost_events());
        if (got + in.lost_events() != last_seq)
            state.SkipWithError("events read plus lost do not add up to the kernel's sequence number");
    }
}

void register_all() {
    auto reg = [](const char* name, void (*fn)(benchmark::State&)) {
        return bench::add(name, fn);
    };
    reg("floor/null_ioctl", floor_null_ioctl);
    reg("get/raw_ioctl", get_raw);
    reg("get/libio", get_libio);
    reg("get/gpiod_cxx", get_gpiodcxx);
    reg("get/gpiod_c", get_gpiodc);
    reg("set/raw_ioctl", set_raw);
    reg("set/libio", set_libio);
    reg("set/gpiod_cxx", set_gpiodcxx);
    reg("set/gpiod_c", set_gpiodc);
    reg("port_read/raw_ioctl", port_read_raw);
    reg("port_read/libio", port_read_libio);
    reg("port_read/gpiod_cxx", port_read_gpiodcxx);
    reg("port_read/gpiod_c", port_read_gpiodc);
    reg("port_write/raw_ioctl", port_write_raw);
    reg("port_write/libio", port_write_libio);
    reg("port_write/gpiod_cxx", port_write_gpiodcxx);
    reg("port_write/gpiod_c", port_write_gpiodc);
    reg("edge_latency/raw_poll_read", edge_raw_poll_read)->UseManualTime();
    reg("edge_latency/libio_wait", edge_libio_wait)->UseManualTime();
    reg("edge_latency/libio_event_loop", edge_libio_event_loop)->UseManualTime();
    reg("edge_latency/gpiod_cxx", edge_gpiodcxx)->UseManualTime();
    reg("edge_latency/gpiod_c", edge_gpiodc)->UseManualTime();
    // The same comparisons, paired (every implementation in one loop): the
    // report's ratios and targets come from these.
    reg("paired/get", paired<what::get>);
    reg("paired/set", paired<what::set>);
    reg("paired/port_read", paired<what::port_read>);
    reg("paired/port_write", paired<what::port_write>);
    // Edges are ~50x slower per sample: a longer run gives their p99 enough samples.
    reg("paired/edge_latency", paired<what::edge>)->MinTime(std::getenv("LIBIO_BENCH_SMOKE") != nullptr ? 0.01 : 1.0);
    const bool smoke = std::getenv("LIBIO_BENCH_SMOKE") != nullptr;
    bench::add("event_throughput/libio", event_throughput)->Arg(smoke ? 2000 : 20000)->Iterations(1)->UseManualTime();
    // The paced sweep: about half a second per rate at most (100 toggles in a
    // smoke run).
    auto* sweep = bench::add("event_rate/libio", event_rate)->Iterations(1)->UseManualTime();
    for (const std::int64_t rate : {500, 1000, 2000, 5000, 10000, 20000, 50000, 100000})
        sweep->Args({rate, smoke ? 100 : std::max<std::int64_t>(250, rate / 2)});
    bench::add("event_overflow/libio", event_overflow)->Iterations(1);
}

}  // namespace

int main(int argc, char** argv) {
    if (::geteuid() != 0 || std::getenv("LIBIO_VM") == nullptr) {
        std::fprintf(stderr, "%s runs as root inside the test VM (bench/run-vm does that):\n"
                             "  python3 tests/vm/vm.py run --kernel 6.12 -- %s\n",
                     argv[0], argv[0]);
        return 2;
    }
    register_all();
    return bench::run_main(argc, argv);
}
