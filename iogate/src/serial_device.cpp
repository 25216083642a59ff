// SPDX-License-Identifier: MIT
#include <io/gate/serial_device.hpp>

#include <io/card.hpp>
#include <io/error.hpp>
#include <io/gate/loop_mailbox.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <future>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <thread>

namespace io::gate {

namespace {

// How a port's modem lines are seen without holding the loop: the loop
// reads the lines (TIOCMGET) and counters (TIOCGICOUNT) every poll period,
// which never blocks and alone would be enough; beside it, a thread of the
// port's own blocks in TIOCMIWAIT and hands the lines to the loop through a
// loop_mailbox as soon as an input changes, so that a change is published
// without waiting for the next poll. Both report through the same
// comparison with the last published values, so a change is published
// once, whichever sees it first. A driver without TIOCMIWAIT (ENOTTY,
// EINVAL) ends the thread and leaves the poll alone; any other error of
// the thread (EIO once the device is gone) fails the port as a failed
// poll does.
//
// TIOCMIWAIT has no timeout and closing the port does not end it: a signal
// does. The thread takes SIGURG (unblocked in it only, with a handler
// that does nothing, installed without SA_RESTART so that the ioctl
// returns EINTR); stopping sets a flag and sends SIGURG until the thread
// has ended, since a signal that comes just before the thread enters the
// ioctl is lost. SIGURG is ignored by default, so a stray one harms nothing.
constexpr int wake_signal = SIGURG;

void install_wake_handler() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa {};
        sa.sa_handler = [](int) {};
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;  // no SA_RESTART: the wait must end
        ::sigaction(wake_signal, &sa, nullptr);
    });
}

bool unsupported(const std::error_code& ec) {
    return ec == std::errc::inappropriate_io_control_operation || ec == std::errc::invalid_argument ||
           ec == std::errc::operation_not_supported || ec == std::errc::function_not_supported;
}

class modem_waiter final {
public:
    using report = std::function<void(const modem_lines&, std::error_code)>;

    modem_waiter(serial_port& port, report r) : port_{port}, report_{std::move(r)} {
        install_wake_handler();
        auto finished = std::make_shared<std::promise<void>>();
        ended_ = finished->get_future();
        thread_ = std::thread([this, finished] {
            run();
            finished->set_value();
        });
    }
    ~modem_waiter() {
        stop_ = true;
        do
            ::pthread_kill(thread_.native_handle(), wake_signal);
        while (ended_.wait_for(std::chrono::milliseconds{10}) != std::future_status::ready);
        thread_.join();
    }
    modem_waiter(const modem_waiter&) = delete;
    modem_waiter& operator=(const modem_waiter&) = delete;

private:
    void run() {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, wake_signal);
        ::pthread_sigmask(SIG_UNBLOCK, &s, nullptr);
        const modem_lines inputs{.cts = true, .dsr = true, .dcd = true, .ri = true};
        while (!stop_) {
            std::error_code ec;
            const auto lines = port_.wait_modem_change(inputs, ec);
            if (stop_)
                return;
            if (ec == std::errc::interrupted)
                continue;  // a signal not ours
            report_(lines, ec);
            if (ec)
                return;
        }
    }

    serial_port& port_;
    report report_;
    std::atomic<bool> stop_{false};
    std::future<void> ended_;
    std::thread thread_;
};

struct line_name {
    const char* metric;
    bool modem_lines::*member;
};
constexpr line_name line_names[] = {
    {"Modem/CTS", &modem_lines::cts}, {"Modem/DSR", &modem_lines::dsr}, {"Modem/DCD", &modem_lines::dcd},
    {"Modem/RI", &modem_lines::ri},   {"Modem/DTR", &modem_lines::dtr}, {"Modem/RTS", &modem_lines::rts},
};

struct counter_name {
    const char* metric;
    std::uint64_t (*get)(const serial_counters&);
};
constexpr counter_name error_names[] = {
    {"Errors/Frame", [](const serial_counters& c) { return c.framing; }},
    {"Errors/Parity", [](const serial_counters& c) { return c.parity; }},
    {"Errors/Overrun", [](const serial_counters& c) { return c.overrun; }},
    {"Errors/Break", [](const serial_counters& c) { return c.breaks; }},
};
constexpr counter_name traffic_names[] = {
    {"Counters/Rx", [](const serial_counters& c) { return c.rx; }},
    {"Counters/Tx", [](const serial_counters& c) { return c.tx; }},
};

}  // namespace

struct serial_device::impl {
    serial_device& self;
    std::string name;
    opener open;
    std::chrono::milliseconds poll;
    std::chrono::milliseconds retry;
    bool dtr_writable = false;
    bool rts_writable = false;
    event_loop& loop;
    std::function<void(std::vector<metric>)> on_data;
    std::function<void(bool, const std::string&)> on_presence;

    std::optional<serial_port> port;
    modem_lines lines;         // as published
    serial_counters counts;    // as published
    event_loop::clock::time_point rx_tx_sent{};
    bool published = false;
    std::uint64_t generation = 0;  // one more at each open: the waiter's reports carry theirs
    std::string last_error;        // of the last failed open, said once
    registration sampler;
    registration reopen;
    loop_mailbox mailbox;                  // the waiter's reports
    std::unique_ptr<modem_waiter> waiter;  // after the mailbox and the port: stopped first

    impl(serial_device& d, event_loop& l) : self{d}, loop{l}, mailbox{l, "a serial port's modem lines"} {}

    void say(const std::string& text) const {
        if (self.log)
            self.log(text);
    }

    bool try_open() {
        try {
            port.emplace(open());
            lines = port->modem();
            counts = port->counters();
        } catch (const std::exception& e) {
            port.reset();
            if (e.what() != last_error)  // once, not at every attempt
                say("serial port " + name + ": " + e.what() + "; tried again every " + std::to_string(retry.count()) +
                    " ms");
            last_error = e.what();
            return false;
        }
        last_error.clear();
        const auto gen = ++generation;
        waiter = std::make_unique<modem_waiter>(*port, [this, gen](const modem_lines& l, std::error_code ec) {
            mailbox.post([this, gen, l, ec] { waited(gen, l, ec); });
        });
        sampler = loop.call_every(poll, [this] { sample(); });
        rx_tx_sent = event_loop::clock::now();
        published = true;
        on_presence(true, {});
        return true;
    }

    void schedule_reopen() {
        reopen = loop.call_every(retry, [this] {
            if (try_open())
                reopen.reset();  // a callback may remove its own registration
        });
    }

    void fail(const std::string& why) {
        waiter.reset();
        sampler.reset();
        port.reset();  // control only: nothing to restore
        if (published) {
            published = false;
            on_presence(false, why);
        }
        schedule_reopen();
    }

    void waited(std::uint64_t gen, const modem_lines& l, std::error_code ec) {
        if (gen != generation || !port)
            return;  // from a port closed since
        if (ec && unsupported(ec)) {
            say("serial port " + name + ": its driver cannot wait for modem line changes (" + ec.message() +
                "); they are read every " + std::to_string(poll.count()) + " ms only");
            return;
        }
        if (ec) {
            fail(ec.message());
            return;
        }
        report(l, nullptr);
    }

    void sample() {
        if (!port)
            return;
        modem_lines l;
        serial_counters c;
        try {
            l = port->modem();
            c = port->counters();
        } catch (const std::system_error& e) {
            fail(e.what());
            return;
        }
        report(l, &c);
    }

    // The metrics whose values differ from those published, as one DDATA.
    void report(const modem_lines& l, const serial_counters* c) {
        std::vector<metric> out;
        const auto ts = utc_now_ms();
        for (const auto& n : line_names)
            if (l.*n.member != lines.*n.member)
                out.push_back(make_metric(n.metric, datatype::boolean, l.*n.member, ts));
        lines = l;
        if (c != nullptr) {
            for (const auto& n : error_names)
                if (n.get(*c) != n.get(counts))
                    out.push_back(make_metric(n.metric, datatype::uint64, n.get(*c), ts));
            auto keep = *c;  // Rx and Tx stay as published until they are due
            const auto now = event_loop::clock::now();
            if ((c->rx != counts.rx || c->tx != counts.tx) && now - rx_tx_sent >= self.rx_tx_period) {
                for (const auto& n : traffic_names)
                    if (n.get(*c) != n.get(counts))
                        out.push_back(make_metric(n.metric, datatype::uint64, n.get(*c), ts));
                rx_tx_sent = now;
            } else {
                keep.rx = counts.rx;
                keep.tx = counts.tx;
            }
            counts = keep;
        }
        if (!out.empty() && on_data)
            on_data(std::move(out));
    }
};

serial_device::serial_device(std::string name, opener open, std::chrono::milliseconds poll,
                             const std::vector<std::string>& writable, std::chrono::milliseconds retry,
                             event_loop& loop, std::function<void(std::vector<metric>)> on_data,
                             std::function<void(bool present, const std::string& why)> on_presence)
    : impl_{std::make_unique<impl>(*this, loop)} {
    auto& d = *impl_;
    if (poll.count() <= 0 || retry.count() <= 0)
        throw io::invalid_argument("serial port " + name + ": the poll and retry periods must be positive");
    for (const auto& w : writable) {
        if (w == "DTR")
            d.dtr_writable = true;
        else if (w == "RTS")
            d.rts_writable = true;
        else
            throw io::invalid_argument("serial port " + name + ": '" + w +
                                       "' cannot be writable; allowed: DTR, RTS (the outputs)");
    }
    d.name = std::move(name);
    d.open = std::move(open);
    d.poll = poll;
    d.retry = retry;
    d.on_data = std::move(on_data);
    d.on_presence = std::move(on_presence);
}

serial_device::~serial_device() {
    impl_->waiter.reset();
}

void serial_device::start() {
    if (!impl_->published && !impl_->reopen && !impl_->try_open())
        impl_->schedule_reopen();
}

bool serial_device::published() const noexcept {
    return impl_->published;
}

std::vector<metric> serial_device::birth_metrics() {
    const auto& d = *impl_;
    std::vector<metric> out;
    for (const auto& n : line_names)
        out.push_back(make_metric(n.metric, datatype::boolean, d.lines.*n.member));
    for (const auto& n : error_names)
        out.push_back(make_metric(n.metric, datatype::uint64, n.get(d.counts)));
    for (const auto& n : traffic_names)
        out.push_back(make_metric(n.metric, datatype::uint64, n.get(d.counts)));
    return out;
}

device::write_status serial_device::write(const metric& m, std::vector<metric>& confirmed) {
    auto& d = *impl_;
    const bool dtr = m.name == "Modem/DTR";
    const bool rts = m.name == "Modem/RTS";
    if (!dtr && !rts) {
        const auto known = [&](const auto& names) {
            return std::any_of(std::begin(names), std::end(names), [&](const auto& n) { return m.name == n.metric; });
        };
        return known(line_names) || known(error_names) || known(traffic_names) ? write_status::not_writable
                                                                                : write_status::unknown_metric;
    }
    if ((dtr && !d.dtr_writable) || (rts && !d.rts_writable))
        return write_status::not_writable;
    if (!std::holds_alternative<bool>(m.val))
        return write_status::bad_value;
    if (!d.port)
        return write_status::failed;
    const bool level = std::get<bool>(m.val);
    modem_lines now;
    try {
        if (dtr)
            d.port->set_dtr(level);
        else
            d.port->set_rts(level);
        now = d.port->modem();
    } catch (const std::system_error& e) {
        d.say("DCMD " + d.name + " '" + m.name + "': " + e.what());
        return write_status::failed;
    }
    // What was read back is published here; the inputs it may have moved
    // (a loopback) follow as the waiter or the next poll sees them.
    const bool back = dtr ? now.dtr : now.rts;
    (dtr ? d.lines.dtr : d.lines.rts) = back;
    confirmed.push_back(make_metric(m.name, datatype::boolean, back, utc_now_ms()));
    return write_status::done;
}

// ---- the set

std::filesystem::path resolve_serial_port(const std::string& port) {
    if (!port.empty() && port.front() == '/')
        return port;
    if (port.find('/') == std::string::npos && port.find('@') == std::string::npos &&
        std::filesystem::exists("/dev/" + port))
        return "/dev/" + port;
    std::string key = port;
    unsigned index = 0;
    if (const auto at = port.rfind('@'); at != std::string::npos) {
        key = port.substr(0, at);
        const auto n = port.substr(at + 1);
        if (n.empty() || n.size() > 3 || !std::all_of(n.begin(), n.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
            throw io::invalid_argument("serial port '" + port + "': '" + n + "' is not a port number (CARD@0..255)");
        index = static_cast<unsigned>(std::stoul(n));
    }
    return serial_port_path(find_card(key), index);
}

struct serial_device_set::impl {
    struct entry {
        serial_port_entry config;
        std::unique_ptr<serial_device> dev;
        bool added = false;
    };
    serial_device_set& self;
    node& n;
    std::vector<entry> entries;

    impl(serial_device_set& s, node& nd) : self{s}, n{nd} {}

    void say(const std::string& text) const {
        if (self.log)
            self.log(text);
    }

    void presence(entry& e, bool present, const std::string& why) {
        const auto& id = e.config.device_id;
        if (present && !e.added) {
            try {
                n.add_device(id, *e.dev);
            } catch (const std::exception& ex) {
                say("serial port " + id + ": " + ex.what());
                return;
            }
            e.added = true;
            say("serial port " + e.config.port + " published as device " + id);
        } else if (!present && e.added) {
            n.remove_device(id);
            e.added = false;
            say("serial port " + id + ": " + why + "; unpublished until it opens again");
        }
    }
};

serial_device_set::serial_device_set(const std::vector<serial_port_entry>& ports, node& n, event_loop& loop)
    : impl_{std::make_unique<impl>(*this, n)} {
    auto& s = *impl_;
    s.entries.reserve(ports.size());  // the devices' callbacks keep their entry's address
    for (const auto& p : ports) {
        auto& e = s.entries.emplace_back();
        e.config = p;
        const auto& id = e.config.device_id;
        e.dev = std::make_unique<serial_device>(
            id, [key = p.port] { return serial_port{resolve_serial_port(key), control_only}; }, p.poll, p.writable,
            std::chrono::seconds{5}, loop, [&n, id](std::vector<metric> ms) { n.device_data(id, std::move(ms)); },
            [s = impl_.get(), &e](bool present, const std::string& why) { s->presence(e, present, why); });
        e.dev->log = [s = impl_.get()](const std::string& t) { s->say(t); };
    }
}

serial_device_set::~serial_device_set() = default;

void serial_device_set::start() {
    for (auto& e : impl_->entries)
        e.dev->start();
}

std::vector<std::string> serial_device_set::device_ids() const {
    std::vector<std::string> out;
    for (const auto& e : impl_->entries)
        if (e.added)
            out.push_back(e.config.device_id);
    return out;
}

}  // namespace io::gate
