// SPDX-License-Identifier: MIT
// iogate's edges as a subscriber on the broker sees them, in the test VM
// (bench/gate_bench.py starts mosquitto with mutual TLS on 127.0.0.1, iogate
// on virtual cards, and runs this):
//
//   bench_gate COMMON latency --device D --inputs SYSFS --count N --rate HZ
//     N rounds, paced at HZ: one change of IN0 through the card's
//     sim_inputs, then, once its DDATA is in, one message published by this
//     program on the same broker, the same TLS, the same payload form. The
//     first measures an edge from the kernel's timestamp (the metric's
//     timestamp_ns property, CLOCK_MONOTONIC) to the subscriber's receipt;
//     the second, the baseline, from just before mosquitto_publish() to the
//     receipt: what the broker and the two TLS connections cost alone.
//   bench_gate COMMON rate --device D --inputs SYSFS --rates R1,R2,.. --seconds S
//     For each rate, IN0 toggled at it for S seconds; then, once nothing
//     more arrives, the edges delivered (by seqno), those the gateway
//     reported lost ("Lost events") and the toggles neither.
//   COMMON: --port P --ca CA --cert CRT --key KEY --group G --node N
//
// Prints one JSON object on standard output. Exit status 0 when every
// round completed, 1 when one did not (each waits at most --timeout-ms).
#include "hist_json.hpp"

#include <io/gate/payload.hpp>
#include <io/rt_histogram.hpp>

#include <mosquitto.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

namespace gate = io::gate;

std::int64_t mono_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void sleep_until_ns(std::int64_t t) {
    timespec ts{static_cast<time_t>(t / 1'000'000'000), static_cast<long>(t % 1'000'000'000)};
    while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
}

struct usage : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct options {
    int port = 0;
    std::string ca, cert, key, group, node, device, inputs, mode;
    unsigned count = 1000;
    double rate = 200;
    std::vector<double> rates;
    double seconds = 2;
    int timeout_ms = 5000;
};

double number(const std::string& flag, const std::string& v) {
    std::size_t used = 0;
    double d = 0;
    try {
        d = std::stod(v, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used != v.size() || !(d > 0))
        throw usage(flag + " wants a positive number, not '" + v + "'");
    return d;
}

options parse(int argc, char** argv) {
    options o;
    std::map<std::string, std::string*> strings{{"--ca", &o.ca},         {"--cert", &o.cert},
                                                {"--key", &o.key},       {"--group", &o.group},
                                                {"--node", &o.node},     {"--device", &o.device},
                                                {"--inputs", &o.inputs}};
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "latency" || a == "rate") {
            o.mode = a;
            continue;
        }
        if (i + 1 >= argc)
            throw usage(a + " needs a value");
        const std::string v = argv[++i];
        if (auto it = strings.find(a); it != strings.end())
            *it->second = v;
        else if (a == "--port")
            o.port = static_cast<int>(number(a, v));
        else if (a == "--count")
            o.count = static_cast<unsigned>(number(a, v));
        else if (a == "--rate")
            o.rate = number(a, v);
        else if (a == "--seconds")
            o.seconds = number(a, v);
        else if (a == "--timeout-ms")
            o.timeout_ms = static_cast<int>(number(a, v));
        else if (a == "--rates") {
            std::stringstream ss(v);
            for (std::string r; std::getline(ss, r, ',');)
                o.rates.push_back(number(a, r));
        } else
            throw usage("unknown option " + a);
    }
    if (o.mode.empty())
        throw usage("name a mode: latency or rate");
    for (const auto& [flag, s] : strings)
        if (s->empty())
            throw usage(flag + " is required");
    if (o.port <= 0 || o.port > 65535)
        throw usage("--port wants 1..65535");
    if (o.mode == "rate" && o.rates.empty())
        throw usage("rate wants --rates R1,R2,...");
    return o;
}

// What the subscriber saw of one message.
struct received {
    std::int64_t at_ns;
    std::string topic;
    gate::payload payload;
};

// One libmosquitto client with its network thread; received messages queue
// up for the main thread.
class client {
public:
    client(const options& o, const std::string& id) {
        m_ = ::mosquitto_new(id.c_str(), true, this);
        if (m_ == nullptr)
            throw std::runtime_error("mosquitto_new failed");
        ::mosquitto_int_option(m_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
        ::mosquitto_int_option(m_, MOSQ_OPT_TCP_NODELAY, 1);
        check(::mosquitto_tls_set(m_, o.ca.c_str(), nullptr, o.cert.c_str(), o.key.c_str(), nullptr), "tls_set");
        ::mosquitto_connect_callback_set(m_, [](mosquitto*, void* self, int rc) {
            auto* c = static_cast<client*>(self);
            const std::lock_guard<std::mutex> g(c->mu_);
            c->connected_ = rc == 0 ? 1 : -1;
            c->cv_.notify_all();
        });
        ::mosquitto_subscribe_callback_set(m_, [](mosquitto*, void* self, int, int, const int*) {
            auto* c = static_cast<client*>(self);
            const std::lock_guard<std::mutex> g(c->mu_);
            c->subscribed_ = true;
            c->cv_.notify_all();
        });
        ::mosquitto_message_callback_set(m_, [](mosquitto*, void* self, const mosquitto_message* msg) {
            const auto at = mono_ns();
            auto* c = static_cast<client*>(self);
            received r{at, msg->topic, {}};
            try {
                r.payload = gate::decode({static_cast<const char*>(msg->payload), static_cast<std::size_t>(msg->payloadlen)});
            } catch (const gate::decode_error&) {
                ++c->undecodable_;
                return;
            }
            const std::lock_guard<std::mutex> g(c->mu_);
            c->inbox_.push_back(std::move(r));
            c->cv_.notify_all();
        });
        check(::mosquitto_connect(m_, "127.0.0.1", o.port, 30), "connect");
        check(::mosquitto_loop_start(m_), "loop_start");
        std::unique_lock<std::mutex> g(mu_);
        if (!cv_.wait_for(g, std::chrono::milliseconds(o.timeout_ms), [&] { return connected_ != 0; }) ||
            connected_ < 0)
            throw std::runtime_error("the broker did not accept the connection of " + id);
    }
    ~client() {
        ::mosquitto_disconnect(m_);
        ::mosquitto_loop_stop(m_, false);
        ::mosquitto_destroy(m_);
    }
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    void subscribe(const std::string& topic, int timeout_ms) {
        check(::mosquitto_subscribe(m_, nullptr, topic.c_str(), 0), "subscribe");
        std::unique_lock<std::mutex> g(mu_);
        if (!cv_.wait_for(g, std::chrono::milliseconds(timeout_ms), [&] { return subscribed_; }))
            throw std::runtime_error("no SUBACK for " + topic);
    }
    void publish(const std::string& topic, const std::string& bytes) {
        check(::mosquitto_publish(m_, nullptr, topic.c_str(), static_cast<int>(bytes.size()), bytes.data(), 0, false),
              "publish");
    }
    // The next message, or nothing after timeout_ms.
    std::optional<received> next(int timeout_ms) {
        std::unique_lock<std::mutex> g(mu_);
        if (!cv_.wait_for(g, std::chrono::milliseconds(timeout_ms), [&] { return !inbox_.empty(); }))
            return std::nullopt;
        auto r = std::move(inbox_.front());
        inbox_.pop_front();
        return r;
    }
    unsigned long undecodable() const { return undecodable_; }

private:
    static void check(int rc, const char* what) {
        if (rc != MOSQ_ERR_SUCCESS)
            throw std::runtime_error(std::string("mosquitto ") + what + ": " + ::mosquitto_strerror(rc));
    }
    mosquitto* m_ = nullptr;
    std::mutex mu_;
    std::condition_variable cv_;
    int connected_ = 0;
    bool subscribed_ = false;
    std::deque<received> inbox_;
    unsigned long undecodable_ = 0;  // written by the network thread only
};

std::optional<std::uint64_t> uint_property(const gate::metric& m, const char* key) {
    const auto* p = m.find_property(key);
    if (p == nullptr || !std::holds_alternative<std::uint64_t>(p->val))
        return std::nullopt;
    return std::get<std::uint64_t>(p->val);
}

class sim_inputs {
public:
    explicit sim_inputs(const std::string& path) : fd_(::open(path.c_str(), O_WRONLY | O_CLOEXEC)) {
        if (fd_ < 0)
            throw std::runtime_error(path + ": " + std::strerror(errno));
    }
    ~sim_inputs() { ::close(fd_); }
    sim_inputs(const sim_inputs&) = delete;
    sim_inputs& operator=(const sim_inputs&) = delete;
    void toggle() {
        level_ = !level_;
        const char* v = level_ ? "1\n" : "0\n";
        if (::pwrite(fd_, v, 2, 0) != 2)
            throw std::runtime_error(std::string("sim_inputs: ") + std::strerror(errno));
    }

private:
    int fd_;
    bool level_ = false;
};

// The edges of IN0 in a DDATA of the card, and the "Lost events" counter.
struct card_data {
    unsigned edges = 0;
    std::optional<std::uint64_t> last_seqno;
    unsigned seqno_gaps = 0;
    std::optional<std::uint64_t> lost;
    std::int64_t last_ts_ns = 0;
};

void account(const received& r, card_data& d) {
    for (const auto& m : r.payload.metrics) {
        if (m.name == "Lost events" && std::holds_alternative<std::uint64_t>(m.val))
            d.lost = std::get<std::uint64_t>(m.val);
        if (m.name != "Lines/IN0")
            continue;
        const auto seq = uint_property(m, "seqno");
        const auto ts = uint_property(m, "timestamp_ns");
        if (!seq || !ts)
            continue;
        if (d.last_seqno && *seq != *d.last_seqno + 1)
            ++d.seqno_gaps;
        d.last_seqno = seq;
        d.last_ts_ns = static_cast<std::int64_t>(*ts);
        ++d.edges;
    }
}

int run_latency(const options& o, client& sub, client& pub, const std::string& ddata) {
    sim_inputs in(o.inputs);
    io::rt::latency_histogram edge, baseline;
    const std::string raw_topic = "spBv1.0/" + o.group + "/DDATA/" + o.node + "-bench/raw";
    unsigned timeouts = 0;
    card_data d;
    const auto period = static_cast<std::int64_t>(1e9 / o.rate);
    auto next = mono_ns();
    for (unsigned i = 0; i < o.count; ++i) {
        next += period;
        sleep_until_ns(next);
        in.toggle();
        bool got = false;
        while (!got) {
            auto r = sub.next(o.timeout_ms);
            if (!r) {
                ++timeouts;
                break;
            }
            if (r->topic != ddata)
                continue;
            const unsigned before = d.edges;
            account(*r, d);
            if (d.edges > before) {
                edge.record_ns(r->at_ns - d.last_ts_ns);
                got = true;
            }
        }
        // The baseline: this program's own message, timestamped just before it goes.
        gate::payload p;
        p.timestamp_ms = gate::utc_now_ms();
        auto m = gate::make_metric("Lines/IN0", gate::datatype::boolean, (i % 2) == 0, p.timestamp_ms);
        const auto sent = mono_ns();
        m.properties.push_back(gate::property{"timestamp_ns", gate::datatype::uint64, static_cast<std::uint64_t>(sent)});
        p.metrics.push_back(std::move(m));
        pub.publish(raw_topic, gate::encode(p));
        for (;;) {
            auto r = sub.next(o.timeout_ms);
            if (!r) {
                ++timeouts;
                break;
            }
            if (r->topic == raw_topic) {
                baseline.record_ns(r->at_ns - sent);
                break;
            }
            if (r->topic == ddata)
                account(*r, d);
        }
    }
    std::printf("{\"mode\": \"latency\", \"rounds\": %u, \"rate\": %.1f, \"timeouts\": %u, \"seqno_gaps\": %u, "
                "\"undecodable\": %lu,\n \"edge_to_subscriber\": {",
                o.count, o.rate, timeouts, d.seqno_gaps, sub.undecodable());
    bench::write_histogram_members(stdout, edge);
    std::printf("},\n \"mqtt_publish_to_subscriber\": {");
    bench::write_histogram_members(stdout, baseline);
    std::printf("}}\n");
    return timeouts == 0 && d.seqno_gaps == 0 ? 0 : 1;
}

int run_rate(const options& o, client& sub, const std::string& ddata) {
    sim_inputs in(o.inputs);
    std::printf("{\"mode\": \"rate\", \"seconds\": %.2f, \"rows\": [", o.seconds);
    card_data d;
    // Everything before the first rate (births, earlier runs) is drained first.
    while (auto r = sub.next(300))
        if (r->topic == ddata)
            account(*r, d);
    bool first = true;
    for (const double rate : o.rates) {
        const unsigned edges0 = d.edges;
        const std::uint64_t lost0 = d.lost.value_or(0);
        const auto period = static_cast<std::int64_t>(1e9 / rate);
        const auto n = static_cast<unsigned>(rate * o.seconds);
        const auto t0 = mono_ns();
        auto next = t0;
        unsigned late = 0;  // toggles that left more than a period behind schedule
        for (unsigned i = 0; i < n; ++i) {
            next += period;
            const auto now = mono_ns();
            if (now < next)
                sleep_until_ns(next);
            else if (now - next > period)
                ++late;
            in.toggle();
            while (auto r = sub.next(0))
                if (r->topic == ddata)
                    account(*r, d);
        }
        const auto applied_s = static_cast<double>(mono_ns() - t0) / 1e9;
        // Once 1 s passes with nothing more for the card, the rest is lost.
        while (auto r = sub.next(1000))
            if (r->topic == ddata)
                account(*r, d);
        const unsigned delivered = d.edges - edges0;
        const std::uint64_t lost = d.lost.value_or(0) - lost0;
        const long long unaccounted = static_cast<long long>(n) - delivered - static_cast<long long>(lost);
        std::printf("%s\n  {\"rate\": %.0f, \"applied\": %u, \"achieved_rate\": %.0f, \"late\": %u, \"delivered\": %u, "
                    "\"reported_lost\": %llu, \"unaccounted\": %lld}",
                    first ? "" : ",", rate, n, n / applied_s, late, delivered, static_cast<unsigned long long>(lost),
                    unaccounted);
        first = false;
        std::fflush(stdout);
    }
    std::printf("\n], \"seqno_gaps\": %u, \"undecodable\": %lu}\n", d.seqno_gaps, sub.undecodable());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    try {
        o = parse(argc, argv);
    } catch (const usage& e) {
        std::fprintf(stderr,
                     "bench_gate: %s\nusage: bench_gate --port P --ca CA --cert CRT --key KEY --group G --node N "
                     "--device D --inputs SYSFS latency [--count N --rate HZ] | rate --rates R1,R2,.. [--seconds S]\n",
                     e.what());
        return 2;
    }
    ::mosquitto_lib_init();
    int rc = 1;
    try {
        const std::string ddata = "spBv1.0/" + o.group + "/DDATA/" + o.node + "/" + o.device;
        client sub(o, "bench-subscriber");
        sub.subscribe("spBv1.0/" + o.group + "/DDATA/#", o.timeout_ms);
        if (o.mode == "latency") {
            client pub(o, "bench-publisher");
            rc = run_latency(o, sub, pub, ddata);
        } else {
            rc = run_rate(o, sub, ddata);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_gate: %s\n", e.what());
        rc = 1;
    }
    ::mosquitto_lib_cleanup();
    return rc;
}
