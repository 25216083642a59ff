// SPDX-License-Identifier: MIT
#include <io/gate/mqtt_transport.hpp>

#include <io/error.hpp>
#include <io/gate/loop_mailbox.hpp>

#include <mosquitto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <sys/stat.h>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace io::gate {

std::string mqtt_server::uri() const {
    const bool v6 = host.find(':') != std::string::npos;
    return std::string{tls ? "mqtts://" : "mqtt://"} + (v6 ? "[" : "") + host + (v6 ? "]" : "") + ":" +
           std::to_string(port);
}

bool is_loopback_host(const std::string& host) noexcept {
    if (host == "localhost" || host == "::1")
        return true;
    unsigned a = 0, b = 0, c = 0, d = 0;
    char tail = 0;
    return std::sscanf(host.c_str(), "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 &&
           c < 256 && d < 256;
}

namespace {

void check_readable(const std::string& what, const std::string& path, bool secret) {
    if (path.empty())
        throw io::invalid_argument(what + " is not set; TLS needs the CA, this node's certificate and its key");
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || ::access(path.c_str(), R_OK) != 0)
        throw io::invalid_argument(what + " " + path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        throw io::invalid_argument(what + " " + path + " is not a regular file");
    if (secret && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw io::invalid_argument(what + " " + path + " may be read by group or others (mode " + mode +
                                   "); a private key must be the owner's only: chmod 0600 " + path);
    }
}

}  // namespace

void check_options(const mqtt_options& o) {
    if (o.servers.empty())
        throw io::invalid_argument("no MQTT server given");
    bool any_tls = false;
    for (const auto& s : o.servers) {
        if (s.host.empty())
            throw io::invalid_argument("MQTT server without a host name");
        if (s.port == 0)
            throw io::invalid_argument("MQTT server " + s.host + ": port 0");
        if (!s.tls) {
            if (!is_loopback_host(s.host))
                throw io::invalid_argument("plain MQTT to " + s.uri() +
                                           " refused: without TLS only loopback (127.0.0.1, ::1, localhost) is "
                                           "allowed, and only for tests");
            if (!o.allow_plain_loopback)
                throw io::invalid_argument("plain MQTT to " + s.uri() +
                                           " refused: it needs the test switch (allow_plain_loopback)");
        }
        any_tls = any_tls || s.tls;
    }
    if (o.client_id.empty())
        throw io::invalid_argument("MQTT client ID is empty");
    if (any_tls) {
        check_readable("CA file", o.ca_file, false);
        check_readable("certificate file", o.cert_file, false);
        check_readable("key file", o.key_file, true);
    }
    if (o.backoff_min.count() <= 0 || o.backoff_max < o.backoff_min)
        throw io::invalid_argument("MQTT backoff: the minimum must be positive and at most the maximum");
}

std::string certificate_common_name(const std::string& cert_file) {
    FILE* f = std::fopen(cert_file.c_str(), "re");
    if (f == nullptr)
        throw io::invalid_argument("certificate file " + cert_file + ": " + std::strerror(errno));
    X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    if (cert == nullptr)
        throw io::invalid_argument("certificate file " + cert_file + " holds no PEM certificate");
    char cn[256] = {};
    const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    X509_free(cert);
    if (n <= 0)
        throw io::invalid_argument("certificate " + cert_file + " has no common name (CN)");
    return std::string(cn, static_cast<std::size_t>(n));
}

struct mqtt_transport::impl {
    struct event {
        enum class kind { connected, lost, message } what;
        std::string a, b;
    };

    mqtt_options opt;
    transport_listener& listener;
    std::optional<loop_mailbox> mailbox;  // the network thread's events, to the loop

    // Publishers hold alive_mu shared while they use `live`; the network
    // thread takes it exclusively to end a session. Callbacks never take it.
    std::shared_mutex alive_mu;
    mutable std::mutex mu;  // everything below; never held while calling into libmosquitto
    std::condition_variable cv;
    bool quit = false;
    std::optional<will_message> connect_req;
    bool disconnect_req = false;
    bool next_server_req = false;
    unsigned failures = 0;
    std::size_t index = 0;
    mosquitto* live = nullptr;  // the connected client, for publish and subscribe
    std::set<int> pending_acks;          // QoS 1 message ids published, not acknowledged yet
    std::deque<int> early_acks;          // acknowledgements seen before publish() recorded the id
    std::string last_log;                // libmosquitto's last error or warning

    // The network thread's own state.
    bool session_over = false;
    bool connected = false;
    std::string uri;  // of the session's server
    std::string session_error;
    std::thread thread;

    impl(mqtt_options o, transport_listener& l) : opt{std::move(o)}, listener{l} {}

    void post(event e) {
        mailbox->post([this, e = std::move(e)] { deliver(e); });
    }

    void deliver(const event& e) {
        switch (e.what) {
        case event::kind::connected:
            listener.on_connected();
            break;
        case event::kind::lost:
            listener.on_connection_lost(e.a);
            break;
        case event::kind::message:
            listener.on_message(e.a, e.b);
            break;
        }
    }

    std::string describe(int rc) {
        std::string s = rc == MOSQ_ERR_ERRNO ? std::string{std::strerror(errno)} : mosquitto_strerror(rc);
        std::lock_guard lk{mu};
        if (!last_log.empty())
            s += " (" + last_log + ")";
        last_log.clear();
        return s;
    }

    static impl& of(void* p) { return *static_cast<impl*>(p); }

    static void on_connect(mosquitto* m, void* self, int rc) {
        auto& t = of(self);
        if (rc != 0) {
            t.session_error = t.uri + " refused the connection: " + mosquitto_connack_string(rc);
            t.session_over = true;
            return;
        }
        t.connected = true;
        {
            std::lock_guard lk{t.mu};
            t.live = m;
            t.failures = 0;
        }
        t.post({event::kind::connected, {}, {}});
    }

    static void on_disconnect(mosquitto*, void* self, int rc) {
        auto& t = of(self);
        if (t.session_error.empty())
            t.session_error = rc == 0 ? "disconnected from " + t.uri : "connection to " + t.uri + " lost: " + t.describe(rc);
        t.session_over = true;
    }

    static void on_message(mosquitto*, void* self, const mosquitto_message* msg) {
        auto& t = of(self);
        t.post({event::kind::message, msg->topic,
                std::string(static_cast<const char*>(msg->payload), static_cast<std::size_t>(msg->payloadlen))});
    }

    static void on_publish(mosquitto*, void* self, int mid) {
        auto& t = of(self);
        std::lock_guard lk{t.mu};
        if (t.pending_acks.erase(mid) == 0) {
            t.early_acks.push_back(mid);
            if (t.early_acks.size() > 64)
                t.early_acks.pop_front();
        }
    }

    static void on_log(mosquitto*, void* self, int level, const char* text) {
        if ((level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING)) == 0)
            return;
        auto& t = of(self);
        std::lock_guard lk{t.mu};
        t.last_log = text;
    }

    // One connection: from CONNECT until it ends. Returns the reason.
    std::string session(const mqtt_server& server, const will_message& will) {
        session_over = false;
        connected = false;
        session_error.clear();
        uri = server.uri();
        {
            std::lock_guard lk{mu};
            last_log.clear();
            pending_acks.clear();
            early_acks.clear();
        }
        mosquitto* m = mosquitto_new(opt.client_id.c_str(), true, this);
        if (m == nullptr)
            return std::string{"cannot create an MQTT client: "} + std::strerror(errno);
        struct destroy {
            mosquitto* m;
            ~destroy() { mosquitto_destroy(m); }
        } guard{m};
        mosquitto_threaded_set(m, true);
        mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
        // A DDATA goes out when its edges happen, not behind the previous
        // message's ACK (Nagle).
        mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
        mosquitto_connect_callback_set(m, on_connect);
        mosquitto_disconnect_callback_set(m, on_disconnect);
        mosquitto_message_callback_set(m, on_message);
        mosquitto_publish_callback_set(m, on_publish);
        mosquitto_log_callback_set(m, on_log);
        int rc = MOSQ_ERR_SUCCESS;
        if (server.tls) {
            rc = mosquitto_tls_set(m, opt.ca_file.c_str(), nullptr, opt.cert_file.c_str(), opt.key_file.c_str(),
                                   nullptr);
            if (rc == MOSQ_ERR_SUCCESS)
                rc = mosquitto_tls_opts_set(m, 1 /* SSL_VERIFY_PEER */, nullptr, nullptr);
            if (rc == MOSQ_ERR_SUCCESS)
                rc = mosquitto_tls_insecure_set(m, false);  // the server's name is checked
            if (rc != MOSQ_ERR_SUCCESS)
                return "TLS setup: " + describe(rc);
        }
        rc = mosquitto_will_set(m, will.topic.c_str(), static_cast<int>(will.payload.size()), will.payload.data(), 1,
                                false);
        if (rc != MOSQ_ERR_SUCCESS)
            return "Will: " + describe(rc);
        rc = mosquitto_connect(m, server.host.c_str(), server.port, static_cast<int>(opt.keepalive.count()));
        if (rc != MOSQ_ERR_SUCCESS)
            return "connect to " + server.uri() + ": " + describe(rc);

        bool disconnecting = false;
        auto disconnect_deadline = std::chrono::steady_clock::time_point::max();
        bool disconnect_sent = false;
        while (!session_over) {
            bool want_quit = false;
            bool want_disconnect = false;
            bool acks_done = false;
            {
                std::lock_guard lk{mu};
                want_quit = quit;
                want_disconnect = disconnect_req;
                acks_done = pending_acks.empty();
            }
            if (want_quit && !want_disconnect)
                break;  // no DISCONNECT: the broker sends the Will
            if (want_disconnect && !disconnecting) {
                disconnecting = true;
                disconnect_deadline = std::chrono::steady_clock::now() + opt.disconnect_grace;
            }
            if (disconnecting && !disconnect_sent &&
                (acks_done || !connected || std::chrono::steady_clock::now() >= disconnect_deadline)) {
                mosquitto_disconnect(m);
                disconnect_sent = true;
                session_error = "disconnected on request";
                disconnect_deadline = std::chrono::steady_clock::now() + opt.disconnect_grace;
            } else if (disconnect_sent && std::chrono::steady_clock::now() >= disconnect_deadline) {
                break;
            }
            rc = mosquitto_loop(m, 100, 1);
            if (rc != MOSQ_ERR_SUCCESS && !session_over) {
                if (disconnect_sent && rc == MOSQ_ERR_NO_CONN)
                    break;
                session_error = "connection to " + server.uri() + " lost: " + describe(rc);
                break;
            }
        }
        {
            std::unique_lock alive{alive_mu};
            std::lock_guard lk{mu};
            live = nullptr;
        }
        return session_error.empty() ? "connection to " + server.uri() + " ended" : session_error;
    }

    void run() {
        std::unique_lock lk{mu};
        for (;;) {
            cv.wait(lk, [&] { return quit || connect_req.has_value(); });
            if (quit)
                return;
            if (failures > 0) {
                const auto shift = std::min(failures - 1, 16U);
                const std::chrono::milliseconds grown = opt.backoff_min * (std::int64_t{1} << shift);
                const auto wait = std::min(opt.backoff_max, grown);
                cv.wait_for(lk, wait, [&] { return quit || !connect_req; });
                if (quit)
                    return;
                if (!connect_req)
                    continue;  // disconnect() cancelled it
            }
            const will_message will = *connect_req;
            connect_req.reset();
            disconnect_req = false;
            next_server_req = false;
            const mqtt_server server = opt.servers[index % opt.servers.size()];
            lk.unlock();
            const std::string why = session(server, will);
            lk.lock();
            const bool was_connected = connected;
            ++failures;
            if (!was_connected || next_server_req)
                index = (index + 1) % opt.servers.size();
            if (quit && !disconnect_req)
                return;
            lk.unlock();
            post({event::kind::lost, why, {}});
            lk.lock();
        }
    }
};

mqtt_transport::mqtt_transport(mqtt_options options, event_loop& loop, transport_listener& listener) {
    check_options(options);
    mosquitto_lib_init();
    impl_ = std::make_unique<impl>(std::move(options), listener);
    impl_->mailbox.emplace(loop, "the MQTT thread");
    impl_->thread = std::thread([p = impl_.get()] { p->run(); });
}

mqtt_transport::~mqtt_transport() {
    {
        std::lock_guard lk{impl_->mu};
        impl_->quit = true;
    }
    impl_->cv.notify_all();
    impl_->thread.join();
    impl_->mailbox.reset();
    mosquitto_lib_cleanup();
}

void mqtt_transport::connect(const will_message& will) {
    {
        std::lock_guard lk{impl_->mu};
        impl_->connect_req = will;
    }
    impl_->cv.notify_all();
}

bool mqtt_transport::publish(const std::string& topic, const std::string& payload, int qos, bool retain) {
    // libmosquitto only queues the message here (threaded mode); the network
    // thread writes it.
    std::shared_lock alive{impl_->alive_mu};
    mosquitto* m = nullptr;
    {
        std::lock_guard lk{impl_->mu};
        m = impl_->live;
    }
    if (m == nullptr)
        return false;
    int mid = 0;
    const int rc = mosquitto_publish(m, &mid, topic.c_str(), static_cast<int>(payload.size()), payload.data(), qos,
                                     retain);
    if (rc != MOSQ_ERR_SUCCESS)
        return false;
    if (qos > 0) {
        std::lock_guard lk{impl_->mu};
        auto& early = impl_->early_acks;
        if (const auto it = std::find(early.begin(), early.end(), mid); it != early.end())
            early.erase(it);
        else
            impl_->pending_acks.insert(mid);
    }
    return true;
}

void mqtt_transport::subscribe(const std::string& topic, int qos) {
    std::shared_lock alive{impl_->alive_mu};
    mosquitto* m = nullptr;
    {
        std::lock_guard lk{impl_->mu};
        m = impl_->live;
    }
    if (m != nullptr)
        mosquitto_subscribe(m, nullptr, topic.c_str(), qos);
}

void mqtt_transport::disconnect(bool next_server) {
    bool cancelled = false;
    {
        std::lock_guard lk{impl_->mu};
        if (impl_->connect_req) {
            // Not connecting yet (waiting out the backoff): nothing to end.
            impl_->connect_req.reset();
            cancelled = true;
            if (next_server)
                impl_->index = (impl_->index + 1) % impl_->opt.servers.size();
        } else {
            impl_->disconnect_req = true;
            impl_->next_server_req = next_server;
        }
    }
    impl_->cv.notify_all();
    if (cancelled)
        impl_->post({impl::event::kind::lost, "the connection attempt was cancelled", {}});
}

std::string mqtt_transport::current_server() const {
    std::lock_guard lk{impl_->mu};
    return impl_->opt.servers[impl_->index % impl_->opt.servers.size()].uri();
}

}  // namespace io::gate
