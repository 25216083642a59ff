// SPDX-License-Identifier: MIT
// bench_cost: what libio itself costs per call, natively, with the kernel
// taken out. The fake kernel of fake_gpio_kernel.cpp answers this process's
// GPIO ioctls, and its reads, polls and epoll waits on fake line requests,
// at once: its definitions of those C library functions win over glibc's
// for every library, so libio, libgpiod C and libgpiod C++ run their real
// code down to the system call and only the kernel's part is missing.
// libio's table of system calls keeps the kernel's entries, so its hot
// paths take the branch they take in production (fast_ioctl's direct call),
// not the one a test's sys_override would take.
//
// Every case is paired: its implementations run in one loop, in an order
// that rotates, each in blocks of `block` calls timed together (a sample is
// a block's time per call, the clock's own cost taken off), so the
// machine's slow moments fall on all of them alike. Counters per implementation: p50, p99 and mean of the samples
// (ns per call) and heap allocations per call.
#include "bench_common.hpp"
#include "fake_gpio_kernel.hpp"
#include "gpiod_c_request.hpp"

#include <io/chip.hpp>
#include <io/event_loop.hpp>
#include <io/line_request.hpp>

#include "line_request_access.hpp"

#include <gpiod.h>
#include <gpiod.hpp>

#include <linux/gpio.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <memory>
#include <numeric>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;
namespace fake = bench::fake_gpio;

namespace {

constexpr int block = 64;             // calls per sample
constexpr const char* chip_path = "/dev/null";  // the fake kernel's gpiochip (see fake_gpio_kernel.cpp)
constexpr unsigned line = 5;          // the line of one-line requests
constexpr unsigned port_width = 32;   // a port: lines 0..31, as iocard's cos32 IN and OUT

struct contender {
    std::string name;
    std::function<void(int)> run;  // makes that many calls
};

double percentile(std::vector<double>& v, double p) {
    if (v.empty())
        return 0.0;
    std::sort(v.begin(), v.end());
    const auto k = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, k == 0 ? 0 : k - 1)];
}

// The median cost of the clock read pair around a block.
double clock_pair_ns() {
    std::vector<double> v(1001);
    for (auto& x : v) {
        const auto t0 = bench::now_ns();
        x = static_cast<double>(bench::now_ns() - t0);
    }
    return percentile(v, 0.5);
}

void paired_loop(benchmark::State& state, std::vector<contender>& cs) {
    const std::size_t n = cs.size();
    const double clock_ns = clock_pair_ns();
    std::vector<std::vector<double>> samples(n);
    std::vector<std::uint64_t> allocs(n, 0);
    for (auto& c : cs)  // steady state first: lazy set-up, caches, branch predictors
        c.run(block);
    std::size_t it = 0;
    for (auto _ : state) {
        for (std::size_t j = 0; j < n; ++j) {
            const std::size_t k = (it + j) % n;
            const auto a0 = bench::allocations();
            const auto t0 = bench::now_ns();
            cs[k].run(block);
            const auto t1 = bench::now_ns();
            allocs[k] += bench::allocations() - a0;
            samples[k].push_back(std::max(0.0, static_cast<double>(t1 - t0) - clock_ns) / block);
        }
        ++it;
    }
    state.counters["clock_pair_ns"] = clock_ns;
    for (std::size_t k = 0; k < n; ++k) {
        const std::string sfx = "_" + cs[k].name;
        auto& v = samples[k];
        state.counters["n" + sfx] = static_cast<double>(v.size());
        state.counters["mean" + sfx] = v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
        state.counters["p50" + sfx] = percentile(v, 0.50);
        state.counters["p99" + sfx] = percentile(v, 0.99);
        state.counters["allocs" + sfx] =
            v.empty() ? 0.0 : static_cast<double>(allocs[k]) / (static_cast<double>(v.size()) * block);
    }
}

// ---- the requests of each implementation, on the fake kernel

std::vector<unsigned> lines_of(bool port) {
    if (!port)
        return {line};
    std::vector<unsigned> v(port_width);
    std::iota(v.begin(), v.end(), 0U);
    return v;
}

std::shared_ptr<io::line_request> libio_request(const std::vector<unsigned>& offsets) {
    return std::make_shared<io::line_request>(io::detail::line_request_access::make(fake::new_line_fd(), chip_path, offsets));
}

std::shared_ptr<gpiod::line_request> gpiodcxx_request(const std::vector<unsigned>& offsets, bool output, bool edges) {
    gpiod::line_settings st;
    st.set_direction(output ? gpiod::line::direction::OUTPUT : gpiod::line::direction::INPUT);
    if (edges)
        st.set_edge_detection(gpiod::line::edge::BOTH);
    gpiod::line::offsets offs(offsets.begin(), offsets.end());
    return std::make_shared<gpiod::line_request>(
        gpiod::chip{chip_path}.prepare_request().set_consumer("bench-cost").add_line_settings(offs, st).do_request());
}

gpiod::line::value cxx_value(bool v) {
    return v ? gpiod::line::value::ACTIVE : gpiod::line::value::INACTIVE;
}

gpiod_line_value c_value(bool v) {
    return v ? GPIOD_LINE_VALUE_ACTIVE : GPIOD_LINE_VALUE_INACTIVE;
}

// ---- get, set, port read, port write

enum class what { get, set, port_read, port_write };

std::vector<contender> value_contenders(what w) {
    const bool out = w == what::set || w == what::port_write;
    const bool port = w == what::port_read || w == what::port_write;
    const auto offsets = lines_of(port);
    const std::uint64_t all = port ? (std::uint64_t{1} << port_width) - 1 : 1;
    const unsigned long req_code = out ? GPIO_V2_LINE_SET_VALUES_IOCTL : GPIO_V2_LINE_GET_VALUES_IOCTL;
    // Each implementation drives the same sequence of values.
    auto next = [port, all](std::uint64_t v) { return port ? (v + 0x9e3779b9ULL) & all : v ^ 1U; };
    std::vector<contender> cs;

    // raw: the GPIO v2 struct filled and the ioctl called, nothing else
    const int raw_fd = fake::new_line_fd();
    cs.push_back({"raw_ioctl", [=, value = std::uint64_t{0}](int n) mutable {
                      for (int i = 0; i < n; ++i) {
                          gpio_v2_line_values v{out ? value : 0, all};
                          ::ioctl(raw_fd, req_code, &v);
                          benchmark::DoNotOptimize(v.bits);
                          value = next(value);
                      }
                  }});

    auto lr = libio_request(offsets);
    auto p = std::make_shared<io::port>(io::port{"A", offsets});
    cs.push_back({"libio", [=, value = std::uint64_t{0}](int n) mutable {
                      for (int i = 0; i < n; ++i) {
                          if (port && out)
                              lr->write_port(*p, value);
                          else if (port)
                              benchmark::DoNotOptimize(lr->read_port(*p));
                          else if (out)
                              lr->set(line, (value & 1U) != 0);
                          else
                              benchmark::DoNotOptimize(lr->get(line));
                          value = next(value);
                      }
                  }});

    auto cxx = gpiodcxx_request(offsets, out, false);
    auto cxx_offs = std::make_shared<gpiod::line::offsets>(offsets.begin(), offsets.end());
    auto cxx_vals = std::make_shared<gpiod::line::values>(offsets.size());
    cs.push_back({"gpiod_cxx", [=, value = std::uint64_t{0}](int n) mutable {
                      for (int i = 0; i < n; ++i) {
                          if (!port && out) {  // one line: the one-line calls, as an application would
                              cxx->set_value(line, cxx_value((value & 1U) != 0));
                          } else if (!port) {
                              benchmark::DoNotOptimize(cxx->get_value(line));
                          } else if (out) {
                              for (std::size_t b = 0; b < cxx_vals->size(); ++b)
                                  (*cxx_vals)[b] = cxx_value(((value >> b) & 1U) != 0);
                              cxx->set_values(*cxx_offs, *cxx_vals);
                          } else {
                              cxx->get_values(*cxx_offs, *cxx_vals);
                              benchmark::DoNotOptimize(cxx_vals->data());
                          }
                          value = next(value);
                      }
                  }});

    auto c = std::make_shared<bench::gpiod_c_request>(chip_path, offsets, out, false, "bench-cost");
    auto c_offs = std::make_shared<std::vector<unsigned>>(offsets);
    auto c_vals = std::make_shared<std::vector<gpiod_line_value>>(offsets.size());
    cs.push_back({"gpiod_c", [=, value = std::uint64_t{0}](int n) mutable {
                      for (int i = 0; i < n; ++i) {
                          if (!port && out) {
                              gpiod_line_request_set_value(c->req, line, c_value((value & 1U) != 0));
                          } else if (!port) {
                              benchmark::DoNotOptimize(gpiod_line_request_get_value(c->req, line));
                          } else if (out) {
                              for (std::size_t b = 0; b < c_vals->size(); ++b)
                                  (*c_vals)[b] = c_value(((value >> b) & 1U) != 0);
                              gpiod_line_request_set_values_subset(c->req, c_offs->size(), c_offs->data(), c_vals->data());
                          } else {
                              gpiod_line_request_get_values_subset(c->req, c_offs->size(), c_offs->data(), c_vals->data());
                              benchmark::DoNotOptimize(c_vals->data());
                          }
                          value = next(value);
                      }
                  }});
    return cs;
}

template <what W>
void values(benchmark::State& state) {
    fake::set_events_per_read(1);
    auto cs = value_contenders(W);
    paired_loop(state, cs);
}

// ---- reading a batch of edge events that are already queued

template <std::size_t Batch>
void edge_read(benchmark::State& state) {
    fake::set_events_per_read(Batch);
    const auto offsets = lines_of(false);
    std::vector<contender> cs;

    const int raw_fd = fake::new_line_fd();
    auto raw = std::make_shared<std::array<gpio_v2_line_event, Batch>>();
    cs.push_back({"raw_read", [=](int n) {
                      for (int i = 0; i < n; ++i) {
                          const auto r = ::read(raw_fd, raw->data(), sizeof *raw);
                          const auto k = static_cast<std::size_t>(r) / sizeof(gpio_v2_line_event);
                          benchmark::DoNotOptimize((*raw)[k - 1].timestamp_ns);
                      }
                  }});

    auto lr = libio_request(offsets);
    auto evs = std::make_shared<std::array<io::edge_event, Batch>>();
    cs.push_back({"libio", [=](int n) {
                      for (int i = 0; i < n; ++i) {
                          std::error_code ec;
                          const auto k = lr->read_edge_events(*evs, ec);
                          benchmark::DoNotOptimize((*evs)[k - 1].timestamp_ns);
                      }
                  }});

    auto cxx = gpiodcxx_request(offsets, false, true);
    auto buf = std::make_shared<gpiod::edge_event_buffer>(Batch);
    cs.push_back({"gpiod_cxx", [=](int n) {
                      for (int i = 0; i < n; ++i) {
                          const auto k = cxx->read_edge_events(*buf);
                          benchmark::DoNotOptimize(buf->get_event(static_cast<unsigned>(k - 1)).timestamp_ns());
                      }
                  }});

    auto c = std::make_shared<bench::gpiod_c_request>(chip_path, offsets, false, true, "bench-cost");
    auto cbuf = std::shared_ptr<gpiod_edge_event_buffer>(gpiod_edge_event_buffer_new(Batch), gpiod_edge_event_buffer_free);
    cs.push_back({"gpiod_c", [=](int n) {
                      for (int i = 0; i < n; ++i) {
                          const int k = gpiod_line_request_read_edge_events(c->req, cbuf.get(), Batch);
                          benchmark::DoNotOptimize(gpiod_edge_event_get_timestamp_ns(
                              gpiod_edge_event_buffer_get_event(cbuf.get(), static_cast<unsigned long>(k - 1))));
                      }
                  }});
    paired_loop(state, cs);
}

// ---- waiting for an edge event and taking it: one event ready at once,
// read by each receiver as the test VM's paired edge case reads it.

void edge_dispatch(benchmark::State& state) {
    fake::set_events_per_read(1);
    const auto offsets = lines_of(false);
    std::vector<contender> cs;
    auto last_ts = std::make_shared<std::uint64_t>(0);

    const int poll_fd = fake::new_line_fd();
    auto raw = std::make_shared<std::array<gpio_v2_line_event, 16>>();
    cs.push_back({"raw_poll_read", [=](int n) {
                      for (int i = 0; i < n; ++i) {
                          pollfd p{poll_fd, POLLIN, 0};
                          if (::poll(&p, 1, 2000) != 1)
                              throw std::runtime_error("raw poll: no event");
                          const auto r = ::read(poll_fd, raw->data(), sizeof *raw);
                          const auto k = static_cast<std::size_t>(r) / sizeof(gpio_v2_line_event);
                          *last_ts = (*raw)[k - 1].timestamp_ns;
                      }
                  }});

    // An application's own epoll loop: epoll_wait, then the read of the fd
    // whose event came, with the fd in the epoll data.
    const int epoll_fd = fake::new_line_fd();
    auto ep = std::shared_ptr<int>(new int{::epoll_create1(EPOLL_CLOEXEC)}, [](int* p) {
        ::close(*p);
        delete p;
    });
    {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = epoll_fd;
        if (::epoll_ctl(*ep, EPOLL_CTL_ADD, epoll_fd, &ev) != 0)
            throw std::system_error(errno, std::system_category(), "epoll_ctl");
    }
    cs.push_back({"raw_epoll_read", [=](int n) {
                      for (int i = 0; i < n; ++i) {
                          std::array<epoll_event, 32> evs;
                          const int m = ::epoll_wait(*ep, evs.data(), static_cast<int>(evs.size()), 2000);
                          for (int e = 0; e < m; ++e) {
                              const auto r = ::read(evs[static_cast<std::size_t>(e)].data.fd, raw->data(), sizeof *raw);
                              const auto k = static_cast<std::size_t>(r) / sizeof(gpio_v2_line_event);
                              *last_ts = (*raw)[k - 1].timestamp_ns;
                          }
                      }
                  }});

    auto lr = libio_request(offsets);
    auto evs = std::make_shared<std::array<io::edge_event, 16>>();
    cs.push_back({"libio_wait_read", [=](int n) {
                      for (int i = 0; i < n; ++i) {
                          std::error_code ec;
                          if (!lr->wait_edge_events(2s, ec))
                              throw std::runtime_error("libio wait: no event");
                          const auto k = lr->read_edge_events(*evs, ec);
                          *last_ts = (*evs)[k - 1].timestamp_ns;
                      }
                  }});

    // libio's event loop: on_edge_events, one run_once per wake-up, as the
    // test VM's paired case does.
    // One object, so that the registration goes before its loop and request.
    struct loop_state {
        std::shared_ptr<io::line_request> req;
        io::event_loop loop;
        io::registration reg;
    };
    auto ls = std::make_shared<loop_state>();
    ls->req = libio_request(offsets);
    ls->reg = io::on_edge_events(ls->loop, *ls->req, [last_ts](std::span<const io::edge_event> e, std::error_code) {
        if (!e.empty())
            *last_ts = e.back().timestamp_ns;
    });
    cs.push_back({"libio_event_loop", [=](int n) {
                      for (int i = 0; i < n; ++i) {
                          std::error_code ec;
                          if (ls->loop.run_once(2000ms, ec) != 1)
                              throw std::runtime_error("libio event loop: no dispatch");
                      }
                  }});

    auto cxx = gpiodcxx_request(offsets, false, true);
    auto buf = std::make_shared<gpiod::edge_event_buffer>(16);
    cs.push_back({"gpiod_cxx", [=](int n) {
                      for (int i = 0; i < n; ++i) {
                          if (!cxx->wait_edge_events(2s))
                              throw std::runtime_error("gpiod C++ wait: no event");
                          const auto k = cxx->read_edge_events(*buf);
                          *last_ts = buf->get_event(static_cast<unsigned>(k - 1)).timestamp_ns();
                      }
                  }});

    auto c = std::make_shared<bench::gpiod_c_request>(chip_path, offsets, false, true, "bench-cost");
    auto cbuf = std::shared_ptr<gpiod_edge_event_buffer>(gpiod_edge_event_buffer_new(16), gpiod_edge_event_buffer_free);
    cs.push_back({"gpiod_c", [=](int n) {
                      for (int i = 0; i < n; ++i) {
                          if (gpiod_line_request_wait_edge_events(c->req, 2'000'000'000) != 1)
                              throw std::runtime_error("gpiod C wait: no event");
                          const int k = gpiod_line_request_read_edge_events(c->req, cbuf.get(), 16);
                          *last_ts = gpiod_edge_event_get_timestamp_ns(
                              gpiod_edge_event_buffer_get_event(cbuf.get(), static_cast<unsigned long>(k - 1)));
                      }
                  }});
    try {
        paired_loop(state, cs);
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
}

}  // namespace

int main(int argc, char** argv) {
    bench::add("cost/get", values<what::get>);
    bench::add("cost/set", values<what::set>);
    bench::add("cost/port_read", values<what::port_read>);
    bench::add("cost/port_write", values<what::port_write>);
    bench::add("cost/edge_read_1", edge_read<1>);
    bench::add("cost/edge_read_16", edge_read<16>);
    bench::add("cost/edge_dispatch", edge_dispatch);
    return bench::run_main(argc, argv);
}
