// SPDX-License-Identifier: MIT
#include <io/gate/modbus_device.hpp>

#include <io/error.hpp>
#include <io/gate/card_device.hpp>
#include <io/gate/loop_mailbox.hpp>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

namespace io::gate {

namespace {

constexpr std::size_t max_waiting = 64;

// Requests that may wait for a module, run one after the other in a thread;
// what each returns runs afterwards on the loop.
class request_thread final {
public:
    using job = std::function<std::function<void()>()>;

    explicit request_thread(event_loop& loop) : done_{loop, "a modbus device"} {
        thread_ = std::thread([this] { run(); });
    }
    ~request_thread() {
        {
            const std::lock_guard lock{mutex_};
            stopping_ = true;
        }
        wake_.notify_all();
        thread_.join();  // after the request on the wire, if any; queued ones are dropped
    }
    request_thread(const request_thread&) = delete;
    request_thread& operator=(const request_thread&) = delete;

    // False when max_waiting requests are waiting already.
    bool post(job j) {
        {
            const std::lock_guard lock{mutex_};
            if (jobs_.size() >= max_waiting)
                return false;
            jobs_.push_back(std::move(j));
        }
        wake_.notify_one();
        return true;
    }

private:
    void run() {
        std::unique_lock lock{mutex_};
        for (;;) {
            wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
            if (stopping_)
                return;
            auto j = std::move(jobs_.front());
            jobs_.pop_front();
            lock.unlock();
            done_.post(j());
            lock.lock();
        }
    }

    loop_mailbox done_;  // before the thread, which posts to it
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<job> jobs_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace

struct modbus_device::impl {
    modbus_device& self;
    modbus_module& module;
    modbus_module other;  // the request thread's
    event_loop& loop;
    std::chrono::milliseconds poll;
    std::function<void(std::vector<metric>)> on_data;
    std::function<void(bool, const std::string&)> on_presence;
    unsigned inputs = 0;
    unsigned outputs = 0;
    std::vector<published_line> lines;  // DI0.., then DO0..; offset = the module's
    std::vector<bool> levels;
    std::uint64_t port_value = 0;       // Ports/DI
    bool published = false;
    std::uint64_t generation = 0;       // one more at each `gone`
    std::uint64_t lost_reported = 0;
    registration events;
    registration retry;
    std::unique_ptr<request_thread> requests;  // last: stopped first

    impl(modbus_device& d, modbus_module& m, event_loop& l) : self{d}, module{m}, other{m.duplicate()}, loop{l} {}

    void say(const std::string& text) const {
        if (self.log)
            self.log(text);
    }

    std::uint64_t inputs_value() const {
        std::uint64_t v = 0;
        for (unsigned i = 0; i < inputs; ++i)
            if (levels[i])
                v |= std::uint64_t{1} << i;
        return v;
    }

    // Asks the request thread for the outputs; the device is published once
    // they are read and a poll has read the inputs.
    void request_birth() {
        const auto gen = generation;
        const bool posted = requests->post([this, gen, m = &other, n = outputs]() -> std::function<void()> {
            std::error_code ec;
            std::uint64_t v = 0;
            if (n > 0) {
                try {
                    v = m->read_port("DO");
                } catch (const std::system_error& e) {
                    ec = e.code();
                }
            }
            return [this, gen, v, ec] { outputs_read(gen, v, ec); };
        });
        if (!posted)
            retry = loop.call_after(poll, [this] { request_birth(); });
    }

    void outputs_read(std::uint64_t gen, std::uint64_t outs, std::error_code ec) {
        if (gen != generation || published)
            return;  // it went since: its `back` asks again
        const auto ins = module.input_levels();
        if (ec || !module.present() || module.polls() == 0 || (inputs > 0 && !ins)) {
            // Not answered yet, or a poll has not read the inputs: again
            // after a poll period (a `gone` on the way makes this moot).
            retry = loop.call_after(poll, [this] { request_birth(); });
            return;
        }
        for (unsigned i = 0; i < inputs; ++i)
            levels[i] = ((*ins >> i) & 1U) != 0;
        for (unsigned i = 0; i < outputs; ++i)
            levels[inputs + i] = ((outs >> i) & 1U) != 0;
        port_value = inputs_value();
        lost_reported = module.lost_events();
        published = true;
        on_presence(true, {});
    }

    void on_events(std::span<const modbus_event> batch, std::error_code ec) {
        if (ec) {
            say("modbus module " + module.info().label + ": its events failed: " + ec.message());
            return;
        }
        std::vector<metric> out;
        const auto offset = monotonic_to_utc_offset_ns();
        std::uint64_t last_ts = 0;
        for (const auto& e : batch) {
            switch (e.what) {
            case modbus_event::kind::edge: {
                if (e.line >= inputs)
                    break;
                levels[e.line] = e.change == edge::rising;
                if (!published)
                    break;
                last_ts = monotonic_to_utc_ms(e.timestamp_ns, offset);
                metric m = line_metric(lines[e.line].name, levels[e.line], last_ts);
                add_edge_properties(m, e.timestamp_ns, e.seqno, e.line_seqno);
                out.push_back(std::move(m));
                break;
            }
            case modbus_event::kind::gone:
                ++generation;
                retry.reset();
                if (published) {
                    flush(out, last_ts);
                    published = false;
                    on_presence(false, e.error.message());
                }
                break;
            case modbus_event::kind::back:
                if (!published)
                    request_birth();
                break;
            }
        }
        flush(out, last_ts);
    }

    void flush(std::vector<metric>& out, std::uint64_t ts) {
        if (!published)
            return;
        if (inputs > 0 && inputs_value() != port_value) {
            port_value = inputs_value();
            out.push_back(port_metric("DI", inputs, port_value, ts != 0 ? std::optional{ts} : std::nullopt));
        }
        if (module.lost_events() != lost_reported) {
            lost_reported = module.lost_events();
            out.push_back(make_metric("Lost events", datatype::uint64, lost_reported, utc_now_ms()));
        }
        if (!out.empty() && on_data)
            on_data(std::exchange(out, {}));
    }
};

modbus_device::modbus_device(modbus_module& module, std::chrono::milliseconds poll,
                             const std::vector<std::string>& writable, event_loop& loop,
                             std::function<void(std::vector<metric>)> on_data,
                             std::function<void(bool present, const std::string& why)> on_presence)
    : impl_{std::make_unique<impl>(*this, module, loop)} {
    auto& d = *impl_;
    d.poll = poll;
    d.on_data = std::move(on_data);
    d.on_presence = std::move(on_presence);
    d.inputs = module.model().inputs;
    d.outputs = module.model().outputs;
    for (const auto& w : writable) {
        const auto off = module.find_line(w);  // io::invalid_argument naming the lines
        if (off < d.inputs)
            throw io::invalid_argument("modbus module " + module.info().label + ": " + w +
                                       " is an input; only outputs (DO) are writable");
    }
    for (unsigned off = 0; off < d.inputs + d.outputs; ++off) {
        published_line l;
        l.offset = off;
        l.name = module.line_name(off);
        l.writable = std::find(writable.begin(), writable.end(), l.name) != writable.end();
        d.lines.push_back(std::move(l));
    }
    d.levels.assign(d.lines.size(), false);
    d.requests = std::make_unique<request_thread>(loop);
    d.events = on_modbus_events(loop, module, [p = impl_.get()](std::span<const modbus_event> ev, std::error_code ec) {
        p->on_events(ev, ec);
    });
    module.start_polling(poll);
    d.request_birth();
}

modbus_device::~modbus_device() {
    impl_->module.stop_polling();
}

bool modbus_device::published() const noexcept {
    return impl_->published;
}

std::vector<metric> modbus_device::birth_metrics() {
    auto& d = *impl_;
    std::vector<metric> out;
    for (std::size_t i = 0; i < d.lines.size(); ++i)
        out.push_back(line_metric(d.lines[i].name, d.levels[i], std::nullopt));
    if (d.inputs > 0)
        out.push_back(port_metric("DI", d.inputs, d.port_value, std::nullopt));
    out.push_back(make_metric("Lost events", datatype::uint64, d.lost_reported));
    return out;
}

device::write_status modbus_device::write(const metric& m, std::vector<metric>&) {
    auto& d = *impl_;
    std::vector<const published_line*> lines;
    for (const auto& l : d.lines)
        lines.push_back(&l);
    std::vector<std::string> read_only{"Lost events"};
    if (d.inputs > 0)
        read_only.emplace_back("Ports/DI");
    const auto w = check_line_write(m, lines, read_only);
    if (w.status != write_status::done)
        return w.status;
    if (!d.published)
        return write_status::failed;
    const auto offset = w.line->offset;
    const bool level = w.level;
    const auto name = w.line->name;
    const auto gen = d.generation;
    const bool posted = d.requests->post([&d, offset, level, name, gen, mod = &d.other]() -> std::function<void()> {
        std::error_code ec;
        mod->set(offset, level, ec);
        bool now = level;
        if (!ec)
            now = mod->get(offset, ec);
        return [&d, offset, now, name, gen, ec] {
            if (ec) {
                d.say("DCMD " + d.module.info().label + " 'Lines/" + name + "': the write failed: " + ec.message());
                return;
            }
            d.levels[offset] = now;
            if (d.published && gen == d.generation && d.on_data)
                d.on_data({line_metric(name, now, utc_now_ms())});
        };
    });
    return posted ? write_status::pending : write_status::failed;
}

// ---- the set

struct modbus_device_set::impl {
    struct entry {
        resolved_modbus_module config;
        std::unique_ptr<modbus_device> dev;
        bool added = false;
        std::string last_error;  // of the last failed open
    };
    modbus_device_set& self;
    node& n;
    event_loop& loop;
    modbus_site site;
    std::vector<entry> entries;
    registration reopen;

    impl(modbus_device_set& s, std::vector<resolved_modbus_module> modules, node& nd, event_loop& l)
        : self{s}, n{nd}, loop{l}, site{[&] {
              std::vector<modbus_module_config> c;
              for (const auto& m : modules)
                  c.push_back(m.module);
              return c;
          }()} {
        for (auto& m : modules)
            entries.push_back({std::move(m), nullptr, false, {}});
    }

    void say(const std::string& text) const {
        if (self.log)
            self.log(text);
    }

    // Opens the modules not open yet; true when all are.
    bool open_all() {
        bool all = true;
        for (std::size_t i = 0; i < entries.size(); ++i) {
            auto& e = entries[i];
            if (e.dev)
                continue;
            auto* m = site.try_open(i);
            if (m == nullptr) {
                if (site.error(i) != e.last_error)  // once, not every 5 s
                    say("modbus module " + e.config.module.name + ": " + site.error(i) + "; tried again every 5 s");
                e.last_error = site.error(i);
                all = false;
                continue;
            }
            const auto id = e.config.module.name;
            try {
                e.dev = std::make_unique<modbus_device>(
                    *m, e.config.module.poll, e.config.writable, loop,
                    [this, id](std::vector<metric> ms) { n.device_data(id, std::move(ms)); },
                    [this, i](bool present, const std::string& why) { presence(i, present, why); });
                e.dev->log = [this](const std::string& t) { say(t); };
            } catch (const std::exception& ex) {
                say("modbus module " + id + ": " + ex.what());
            }
        }
        return all;
    }

    void presence(std::size_t i, bool present, const std::string& why) {
        auto& e = entries[i];
        const auto& id = e.config.module.name;
        if (present && !e.added) {
            try {
                n.add_device(id, *e.dev);
            } catch (const std::exception& ex) {
                say("modbus module " + id + ": " + ex.what());
                return;
            }
            e.added = true;
            say("modbus module " + to_string(e.config.module.address) + " published as device " + id);
        } else if (!present && e.added) {
            n.remove_device(id);
            e.added = false;
            say("modbus module " + id + ": no answer (" + why + "); unpublished until it answers");
        }
    }
};

modbus_device_set::modbus_device_set(std::vector<resolved_modbus_module> modules, node& n, event_loop& loop)
    : impl_{std::make_unique<impl>(*this, std::move(modules), n, loop)} {}

modbus_device_set::~modbus_device_set() {
    // The devices first (their threads and polling), then the modules.
    for (auto& e : impl_->entries)
        e.dev.reset();
}

void modbus_device_set::start() {
    if (!impl_->open_all())
        impl_->reopen = impl_->loop.call_every(std::chrono::seconds{5}, [p = impl_.get()] {
            if (p->open_all())
                p->reopen.reset();  // a callback may remove its own registration
        });
}

std::vector<std::string> modbus_device_set::device_ids() const {
    std::vector<std::string> out;
    for (const auto& e : impl_->entries)
        if (e.added)
            out.push_back(e.config.module.name);
    return out;
}

}  // namespace io::gate
