// SPDX-License-Identifier: MIT
// iogate's configuration: what a good file gives, and that each mistake is
// named with its file, key and what is allowed. The MQTT options' safety
// checks (plain MQTT, key file permissions).
#include <io/gate/config.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace gate = io::gate;

namespace {

// The error a text gives, or "" when it parses.
std::string error_of(const std::string& text) {
    try {
        (void)gate::parse_config(text, "/etc/iogate/iogate.toml");
    } catch (const gate::config_error& e) {
        return e.what();
    }
    return "";
}

// A self-signed certificate for CN=press7 (made once with openssl for this test).
const char* const press7_cert = R"(-----BEGIN CERTIFICATE-----
MIIBejCCAR+gAwIBAgIUdelFSLPuBh+P6OEYh8uqz3P7jjQwCgYIKoZIzj0EAwIw
ETEPMA0GA1UEAwwGcHJlc3M3MCAXDTI2MTIwMTA3MDcxM1oYDzIxMjYxMTA3MDcw
NzEzWjARMQ8wDQYDVQQDDAZwcmVzczcwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AASbHTF2RD5gh73ESogHvkk4o33IGZiC5JJExOsxgJkcyW6xwxQL6AlGdTVG8rTJ
INexZICYSDpbm00mr5PbXDsNo1MwUTAdBgNVHQ4EFgQUj1vI3gxTkAVmFDDh6A+H
/S4kr5MwHwYDVR0jBBgwFoAUj1vI3gxTkAVmFDDh6A+H/S4kr5MwDwYDVR0TAQH/
BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEArsQBFltTJD+3n6J9U5VVx6kimiDL
JvLl2RuDB53tjXICIQD+CYdP3cOKkBZ5ojUBlhuOt5fgZqhp1mu9OtTV7S4m4w==
-----END CERTIFICATE-----
)";

const std::string mqtt_ok = R"(
[mqtt]
servers = ["mqtts://broker.example:8883"]
ca_file = "/etc/iogate/ca.crt"
cert_file = "/etc/iogate/node.crt"
key_file = "/etc/iogate/node.key"
)";

}  // namespace

TEST(gate_config, a_complete_file) {
    const auto c = gate::parse_config(R"(
group_id = "plant1"
edge_node_id = "press7"
state_file = "/var/lib/iogate/state"

[mqtt]
servers = ["mqtts://broker1.example", "mqtts://[fd00::1]:9883", "mqtt://127.0.0.1:1884"]
allow_plain_loopback = true
ca_file = "/etc/iogate/ca.crt"
cert_file = "/etc/iogate/node.crt"
key_file = "/etc/iogate/node.key"
keepalive = 20

[primary_host]
id = "scada"

[commands]
enabled = true
max_per_second = 3

[store]
journal_file = ""
capacity = 500
replay_per_second = 50

[[card]]
card = "press-io"
device_id = "press"
lines = ["A0", "A1"]
writable = ["B0"]
safe_state = { B0 = false }

[[card]]
card = "pci:0000:03:00.0"
)",
                                      "t.toml");
    EXPECT_EQ(c.node.group_id, "plant1");
    EXPECT_EQ(c.node.edge_node_id, "press7");
    EXPECT_EQ(c.node.primary_host, "scada");
    EXPECT_TRUE(c.node.commands_enabled);
    EXPECT_EQ(c.node.commands_per_second, 3U);
    ASSERT_EQ(c.mqtt.servers.size(), 3U);
    EXPECT_EQ(c.mqtt.servers[0].port, 8883);
    EXPECT_TRUE(c.mqtt.servers[0].tls);
    EXPECT_EQ(c.mqtt.servers[1].host, "fd00::1");
    EXPECT_EQ(c.mqtt.servers[1].port, 9883);
    EXPECT_FALSE(c.mqtt.servers[2].tls);
    EXPECT_EQ(c.mqtt.servers[2].port, 1884);
    EXPECT_EQ(c.mqtt.keepalive.count(), 20);
    EXPECT_EQ(c.mqtt.client_id, "plant1:press7");
    EXPECT_EQ(c.journal_file, "");
    EXPECT_EQ(c.journal_capacity, 500U);
    EXPECT_EQ(c.replay_per_second, 50U);
    ASSERT_EQ(c.cards.size(), 2U);
    EXPECT_EQ(c.cards[0].device_id, "press");
    EXPECT_EQ(c.cards[0].options.writable, std::vector<std::string>{"B0"});
    EXPECT_TRUE(c.cards[1].device_id.empty());
    EXPECT_EQ(c.cards[0].options.safe_state, (std::map<std::string, bool>{{"B0", false}}));
}

TEST(gate_config, edge_node_id_defaults_to_the_host_name) {
    const auto c = gate::parse_config("group_id = \"g\"\n" + mqtt_ok, "t.toml");
    EXPECT_EQ(c.node.edge_node_id, gate::host_name());
    EXPECT_FALSE(c.node.commands_enabled);
    EXPECT_FALSE(c.node.primary_host);
    EXPECT_EQ(c.state_file, "/var/lib/iogate/state");
}

TEST(gate_config, mistakes_name_file_key_and_what_is_allowed) {
    struct {
        std::string text;
        std::string expect;
    } cases[] = {
        {mqtt_ok, "iogate.toml: group_id: missing"},
        {"group_id = \"a/b\"\n" + mqtt_ok, "group_id: 'a/b' contains '/'"},
        {"group_id = 5\n" + mqtt_ok, "group_id: expected a string, found an integer"},
        {"group_id = \"g\"\ngroup = 1\n" + mqtt_ok, "group: unknown key; allowed here: group_id"},
        {"group_id = \"g\"\n", "mqtt: missing"},
        {"group_id = \"g\"\n[mqtt]\nservers = []\n", "mqtt.servers: missing or empty"},
        {"group_id = \"g\"\n[mqtt]\nservers = [\"http://x\"]\n", "is not an MQTT server URI; allowed: mqtts://"},
        {"group_id = \"g\"\n[mqtt]\nservers = [\"mqtts://x:99999\"]\n", "bad port (1..65535)"},
        {"group_id = \"g\"\n[mqtt]\nservers = [\"mqtt://192.0.2.1\"]\nallow_plain_loopback = true\n",
         "plain MQTT only to loopback"},
        {"group_id = \"g\"\n[mqtt]\nservers = [\"mqtt://127.0.0.1\"]\n", "needs mqtt.allow_plain_loopback = true"},
        {"group_id = \"g\"\n[mqtt]\nservers = [\"mqtts://b\"]\nca_file = \"c\"\ncert_file = \"d\"\n",
         "mqtt.key_file: missing"},
        {"group_id = \"g\"\n" + mqtt_ok + "keepalive = 0\n", "mqtt.keepalive: 0 is out of range; allowed: 5..65535"},
        {"group_id = \"g\"\n" + mqtt_ok + "[primary_host]\n", "primary_host.id: missing"},
        {"group_id = \"g\"\n" + mqtt_ok + "[[card]]\ncard = \"x\"\nwritable = [\"B0\"]\n",
         "card[0].writable: lines are writable but commands are off"},
        {"group_id = \"g\"\n" + mqtt_ok + "[[card]]\nlines = [\"A0\"]\n", "card[0].card: missing"},
        {"group_id = \"g\"\n" + mqtt_ok + "[[card]]\ncard = \"x\"\nlines = [1]\n",
         "card[0].lines: expected an array of strings"},
        {"group_id = \"g\"\n" + mqtt_ok + "[[card]]\ncard = \"x\"\n[[card]]\ncard = \"x\"\n",
         "card[1].card: 'x' is configured twice"},
        {"group_id = \"g\"\n" + mqtt_ok + "[store]\ncapacity = 0\n", "store.capacity: 0 is out of range; allowed: 1..10000000"},
        {"group_id = \"g\"\n" + mqtt_ok + "[store]\njournal_file = \"j\"\n", "store.journal_file: 'j' is not an absolute path"},
        {"group_id = \"g\"\n" + mqtt_ok + "[commands]\nenabled = true\n[[card]]\ncard = \"x\"\nwritable = [\"B0\"]\n" +
             "safe_state = { B1 = false }\n",
         "card[0].safe_state.B1: is not in writable"},
        {"group_id = \"g\"\n" + mqtt_ok + "[commands]\nenabled = true\n[[card]]\ncard = \"x\"\nwritable = [\"B0\"]\n" +
             "safe_state = { B0 = 0 }\n",
         "card[0].safe_state.B0: expected true or false"},
        {"group_id = \"g\n", "iogate.toml:1: not valid TOML"},
    };
    for (const auto& c : cases) {
        const auto e = error_of(c.text);
        EXPECT_NE(e.find(c.expect), std::string::npos) << "text:\n" << c.text << "\nerror: " << e;
        EXPECT_EQ(e.rfind("/etc/iogate/iogate.toml", 0), 0U) << e;
    }
}

TEST(gate_config, a_missing_file_is_named) {
    try {
        (void)gate::load_config("/nonexistent/iogate.toml");
        ADD_FAILURE() << "no error";
    } catch (const gate::config_error& e) {
        EXPECT_NE(std::string{e.what()}.find("/nonexistent/iogate.toml: cannot read"), std::string::npos);
    }
}

TEST(gate_mqtt_options, plain_and_tls_files_are_checked) {
    EXPECT_TRUE(gate::is_loopback_host("127.0.0.1"));
    EXPECT_TRUE(gate::is_loopback_host("127.1.2.3"));
    EXPECT_TRUE(gate::is_loopback_host("::1"));
    EXPECT_FALSE(gate::is_loopback_host("128.0.0.1"));
    EXPECT_FALSE(gate::is_loopback_host("127.0.0.1.example"));

    gate::mqtt_options o;
    o.client_id = "c";
    o.servers.push_back({"127.0.0.1", 1883, false});
    EXPECT_THROW(gate::check_options(o), io::invalid_argument);  // no test switch
    o.allow_plain_loopback = true;
    EXPECT_NO_THROW(gate::check_options(o));
    o.servers.push_back({"192.0.2.1", 1883, false});
    EXPECT_THROW(gate::check_options(o), io::invalid_argument);

    const auto dir = std::filesystem::temp_directory_path() / ("gate_tls_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto file = [&](const char* name, mode_t mode) {
        const auto p = (dir / name).string();
        std::ofstream(p) << "PEM\n";
        ::chmod(p.c_str(), mode);
        return p;
    };
    o.servers = {{"broker.example", 8883, true}};
    o.ca_file = file("ca.crt", 0644);
    o.cert_file = file("node.crt", 0644);
    o.key_file = file("node.key", 0644);
    try {
        gate::check_options(o);
        ADD_FAILURE() << "a key readable by others was accepted";
    } catch (const io::invalid_argument& e) {
        EXPECT_NE(std::string{e.what()}.find("chmod 0600 " + o.key_file), std::string::npos) << e.what();
    }
    ::chmod(o.key_file.c_str(), 0600);
    EXPECT_NO_THROW(gate::check_options(o));
    o.ca_file = (dir / "missing.crt").string();
    EXPECT_THROW(gate::check_options(o), io::invalid_argument);
    std::filesystem::remove_all(dir);
}

TEST(gate_config, the_certificate_must_name_the_edge_node) {
    const auto dir = std::filesystem::temp_directory_path() / ("gate_cn_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto file = [&](const char* name, const char* text, mode_t mode) {
        const auto p = (dir / name).string();
        std::ofstream(p) << text;
        ::chmod(p.c_str(), mode);
        return p;
    };
    auto c = gate::parse_config("group_id = \"g\"\nedge_node_id = \"press7\"\n" + mqtt_ok, "t.toml");
    c.mqtt.ca_file = file("ca.crt", press7_cert, 0644);
    c.mqtt.cert_file = file("node.crt", press7_cert, 0644);
    c.mqtt.key_file = file("node.key", "key\n", 0600);
    EXPECT_EQ(gate::certificate_common_name(c.mqtt.cert_file), "press7");
    EXPECT_NO_THROW(gate::check_config(c));
    c.node.edge_node_id = "press8";
    try {
        gate::check_config(c);
        ADD_FAILURE() << "a certificate of another node was accepted";
    } catch (const io::invalid_argument& e) {
        EXPECT_NE(std::string{e.what()}.find("is issued to 'press7' but edge_node_id is 'press8'"), std::string::npos)
            << e.what();
    }
    c.mqtt.cert_file = file("junk.crt", "junk\n", 0644);
    EXPECT_THROW(gate::certificate_common_name(c.mqtt.cert_file), io::invalid_argument);
    std::filesystem::remove_all(dir);
}

namespace {

const std::string top = "group_id = \"g\"\nedge_node_id = \"press7\"\n";

// A libio configuration directory with one modbus.d file, removed at the end.
struct libio_dir {
    std::filesystem::path path;
    explicit libio_dir(const std::string& conf) {
        char tmpl[] = "/tmp/gate_libio_XXXXXX";
        path = ::mkdtemp(tmpl);
        std::filesystem::create_directory(path / "modbus.d");
        std::ofstream(path / "modbus.d" / "site.conf") << conf;
    }
    ~libio_dir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST(gate_config, modbus_modules_by_uri_and_by_name) {
    const auto c = gate::parse_config(top + R"(
[commands]
enabled = true
[[modbus_module]]
module = "modbus-tcp://192.0.2.7:1502?unit=3&model=410"
device_id = "rack3"
poll_ms = 50
writable = ["DO0", "DO15"]
[[modbus_module]]
module = "rack4-inputs"
)" + mqtt_ok, "/etc/iogate/iogate.toml");
    ASSERT_EQ(c.modbus_modules.size(), 2U);
    EXPECT_EQ(c.modbus_modules[0].device_id, "rack3");
    EXPECT_EQ(c.modbus_modules[0].poll, std::chrono::milliseconds{50});
    EXPECT_EQ(c.modbus_modules[0].writable, (std::vector<std::string>{"DO0", "DO15"}));
    EXPECT_EQ(c.modbus_modules[0].where, "/etc/iogate/iogate.toml:6: modbus_module[0]");
    EXPECT_EQ(c.modbus_modules[1].device_id, "rack4-inputs");  // a name is the device ID
    EXPECT_FALSE(c.modbus_modules[1].poll);

    libio_dir dir{"[rack4-inputs]\nuri = modbus-rtu:/dev/ttyS4?unit=4&baud=19200\nmodel = 430\npoll = 250ms\n"};
    const auto r = gate::resolve_modbus_modules(c, dir.path);
    ASSERT_EQ(r.size(), 2U);
    EXPECT_EQ(r[0].module.name, "rack3");
    EXPECT_EQ(r[0].module.address.port, 1502);
    EXPECT_EQ(r[0].module.address.unit, 3U);
    EXPECT_EQ(r[0].module.poll, std::chrono::milliseconds{50});
    EXPECT_EQ(r[0].writable, c.modbus_modules[0].writable);
    EXPECT_EQ(r[1].module.name, "rack4-inputs");
    EXPECT_EQ(r[1].module.address.device, "/dev/ttyS4");
    EXPECT_EQ(r[1].module.address.model, "430");
    EXPECT_EQ(r[1].module.poll, std::chrono::milliseconds{250});  // libio's, as iogate.toml gives none

    // poll_ms in iogate.toml wins over libio's; the default without either is 100 ms.
    const auto c2 = gate::parse_config(top + "[[modbus_module]]\nmodule = \"rack4-inputs\"\npoll_ms = 20\n"
                                             "device_id = \"in4\"\n[[modbus_module]]\ndevice_id = \"x\"\n"
                                             "module = \"modbus-tcp://h?unit=1&model=520\"\n" + mqtt_ok,
                                       "f");
    const auto r2 = gate::resolve_modbus_modules(c2, dir.path);
    EXPECT_EQ(r2[0].module.name, "in4");
    EXPECT_EQ(r2[0].module.poll, std::chrono::milliseconds{20});
    EXPECT_EQ(r2[1].module.poll, std::chrono::milliseconds{100});
}

TEST(gate_config, modbus_module_mistakes_name_the_key) {
    const auto e = [](const std::string& entry, const std::string& extra = "") {
        return error_of(top + extra + "[[modbus_module]]\n" + entry + mqtt_ok);
    };
    const std::string uri = "modbus-tcp://127.0.0.1:1502?unit=1&model=410";
    EXPECT_NE(e("device_id = \"a\"\n").find("modbus_module[0].module: missing; a libio Modbus URI"), std::string::npos);
    EXPECT_NE(e("module = \"modbus-tcp://h?unit=1\"\ndevice_id = \"a\"\n")
                  .find("modbus_module[0].module: 'modbus-tcp://h?unit=1' names no model; add model=(410, 420"),
              std::string::npos);
    EXPECT_NE(e("module = \"modbus-tcp://h?model=410\"\ndevice_id = \"a\"\n").find("names no unit; add unit=1..247"),
              std::string::npos);
    EXPECT_NE(e("module = \"modbus-tcp://h?unit=1&model=410&speed=3\"\ndevice_id = \"a\"\n")
                  .find("modbus_module[0].module: modbus URI 'modbus-tcp://h?unit=1&model=410&speed=3': unknown "
                        "parameter 'speed'"),
              std::string::npos);
    EXPECT_NE(e("module = \"" + uri + "\"\n").find("modbus_module[0].device_id: missing; a module given by URI"),
              std::string::npos);
    EXPECT_NE(e("module = \"" + uri + "\"\ndevice_id = \"a/b\"\n").find("modbus_module[0].device_id: 'a/b' contains '/'"),
              std::string::npos);
    EXPECT_NE(e("module = \"" + uri + "\"\ndevice_id = \"a\"\npoll_ms = 5\n")
                  .find("/etc/iogate/iogate.toml:6: modbus_module[0].poll_ms: 5 is out of range; allowed: 10..60000"),
              std::string::npos);
    EXPECT_NE(e("module = \"" + uri + "\"\ndevice_id = \"a\"\nwritable = [\"DO0\"]\n")
                  .find("modbus_module[0].writable: lines are writable but commands are off"),
              std::string::npos);
    const std::string on = "[commands]\nenabled = true\n";
    for (const auto* bad : {"DI0", "DO16", "DO01", "DO", "do1"})
        EXPECT_NE(e("module = \"" + uri + "\"\ndevice_id = \"a\"\nwritable = [\"" + bad + "\"]\n", on)
                      .find(std::string{"modbus_module[0].writable: '"} + bad +
                            "' is not an output of model 410; allowed: DO0..DO15"),
                  std::string::npos)
            << bad;
    EXPECT_NE(e("module = \"" + uri + "\"\ndevice_id = \"a\"\nlines = [\"DI0\"]\n")
                  .find("modbus_module[0].lines: unknown key; allowed here: module, device_id, poll_ms, writable"),
              std::string::npos);
    EXPECT_NE(e("module = \"" + uri + "\"\ndevice_id = \"a\"\n[[modbus_module]]\nmodule = \"" + uri +
                "\"\ndevice_id = \"b\"\n")
                  .find("modbus_module[1].module: '" + uri + "' is configured twice"),
              std::string::npos);
    EXPECT_NE(e("module = \"r1\"\n[[modbus_module]]\nmodule = \"r2\"\ndevice_id = \"r1\"\n")
                  .find("modbus_module[1].device_id: 'r1' is the device ID of two modules"),
              std::string::npos);
    EXPECT_NE(e("module = \"r1\"\n", "[[card]]\ncard = \"dio0\"\ndevice_id = \"r1\"\n")
                  .find("modbus_module[0].device_id: 'r1' is also the device ID of [[card]] card = 'dio0'"),
              std::string::npos);
    EXPECT_NE(error_of("[[modbus_module]]\nmodule = \"r1\"\n[modbus_server]\nenabled = true\n[[modbus_server.unit]]\n"
                       "id = 1\ncard = \"c\"\n")
                  .find("modbus_module: [[modbus_module]] publishes over MQTT, but there is no [mqtt]"),
              std::string::npos);
}

TEST(gate_config, modbus_module_names_are_checked_against_libio) {
    libio_dir dir{"[rack1]\nuri = modbus-tcp://192.0.2.1?unit=1\n\n[rack2]\nuri = modbus-tcp://192.0.2.1?unit=2\n"
                  "model = 430\n"};
    const auto err = [&](const std::string& entry) {
        try {
            (void)gate::resolve_modbus_modules(
                gate::parse_config(top + "[commands]\nenabled = true\n[[modbus_module]]\n" + entry + mqtt_ok,
                                   "/etc/iogate/iogate.toml"),
                dir.path);
        } catch (const gate::config_error& e) {
            return std::string{e.what()};
        }
        return std::string{};
    };
    const auto d = (dir.path / "modbus.d").string();
    EXPECT_EQ(err("module = \"rack9\"\n"), "/etc/iogate/iogate.toml:5: modbus_module[0].module: 'rack9' is not a "
                                           "module configured in " + d + " (it configures rack1, rack2); allowed: "
                                           "one of those names, or a modbus-tcp:// or modbus-rtu: URI");
    EXPECT_NE(err("module = \"rack1\"\n").find("modbus_module[0].module: 'rack1' has no model in " + d +
                                               "/site.conf:1; give it one there (model = 410"),
              std::string::npos);
    EXPECT_NE(err("module = \"rack2\"\nwritable = [\"DO0\"]\n")
                  .find("modbus_module[0].writable: 'DO0' is not an output of model 430, which has none"),
              std::string::npos);
    EXPECT_EQ(err("module = \"rack2\"\n"), "");
}

TEST(gate_config, serial_ports) {
    const auto c = gate::parse_config(top + R"(
[commands]
enabled = true
[[serial_port]]
port = "/dev/ttyS4"
writable = ["DTR", "RTS"]
poll_ms = 250
[[serial_port]]
port = "ttyUSB0"
[[serial_port]]
port = "dio0@1"
device_id = "modem1"
)" + mqtt_ok, "/etc/iogate/iogate.toml");
    ASSERT_EQ(c.serial_ports.size(), 3U);
    EXPECT_EQ(c.serial_ports[0].port, "/dev/ttyS4");
    EXPECT_EQ(c.serial_ports[0].device_id, "ttyS4");  // a /dev node's name is the device ID
    EXPECT_EQ(c.serial_ports[0].poll, std::chrono::milliseconds{250});
    EXPECT_EQ(c.serial_ports[0].writable, (std::vector<std::string>{"DTR", "RTS"}));
    EXPECT_EQ(c.serial_ports[1].device_id, "ttyUSB0");
    EXPECT_EQ(c.serial_ports[1].poll, std::chrono::milliseconds{1000});
    EXPECT_TRUE(c.serial_ports[1].writable.empty());
    EXPECT_EQ(c.serial_ports[2].port, "dio0@1");
    EXPECT_EQ(c.serial_ports[2].device_id, "modem1");
}

TEST(gate_config, serial_port_mistakes_name_the_key) {
    const auto e = [](const std::string& entry, const std::string& extra = "") {
        return error_of(top + extra + "[[serial_port]]\n" + entry + mqtt_ok);
    };
    const std::string on = "[commands]\nenabled = true\n";
    EXPECT_NE(e("device_id = \"a\"\n").find("serial_port[0].port: missing; a path (/dev/ttyS4"), std::string::npos);
    EXPECT_NE(e("port = \"/dev/serial/by-id/usb-FTDI-if00\"\n")
                  .find("serial_port[0].device_id: missing; port '/dev/serial/by-id/usb-FTDI-if00' is not a tty "
                        "name, so give the device ID"),
              std::string::npos);
    EXPECT_NE(e("port = \"dio0@1\"\n").find("serial_port[0].device_id: missing; port 'dio0@1'"), std::string::npos);
    EXPECT_NE(e("port = \"ttyS4\"\ndevice_id = \"a+b\"\n").find("serial_port[0].device_id: 'a+b' contains '+'"),
              std::string::npos);
    EXPECT_NE(e("port = \"ttyS4\"\npoll_ms = 5\n")
                  .find("/etc/iogate/iogate.toml:5: serial_port[0].poll_ms: 5 is out of range; allowed: 10..60000"),
              std::string::npos);
    EXPECT_NE(e("port = \"ttyS4\"\npoll_ms = 60001\n")
                  .find("serial_port[0].poll_ms: 60001 is out of range; allowed: 10..60000"),
              std::string::npos);
    EXPECT_NE(e("port = \"ttyS4\"\npoll_ms = \"1s\"\n")
                  .find("serial_port[0].poll_ms: expected an integer 10..60000, found a string"),
              std::string::npos);
    EXPECT_NE(e("port = \"ttyS4\"\nwritable = [\"DTR\"]\n")
                  .find("serial_port[0].writable: lines are writable but commands are off; set [commands] enabled = "
                        "true"),
              std::string::npos);
    for (const auto* bad : {"CTS", "dtr", "DSR", ""})
        EXPECT_NE(e("port = \"ttyS4\"\nwritable = [\"" + std::string{bad} + "\"]\n", on)
                      .find(std::string{"serial_port[0].writable: '"} + bad +
                            "' is not an output of a serial port; allowed: \"DTR\", \"RTS\""),
                  std::string::npos)
            << bad;
    EXPECT_NE(e("port = \"ttyS4\"\nbaud = 9600\n")
                  .find("serial_port[0].baud: unknown key; allowed here: port, device_id, poll_ms, writable"),
              std::string::npos);
    EXPECT_NE(e("port = \"ttyS4\"\n[[serial_port]]\nport = \"ttyS4\"\ndevice_id = \"b\"\n")
                  .find("serial_port[1].port: 'ttyS4' is configured twice"),
              std::string::npos);
    EXPECT_NE(e("port = \"ttyS4\"\n[[serial_port]]\nport = \"/dev/ttyS4\"\n")
                  .find("serial_port[1].device_id: 'ttyS4' is the device ID of two serial ports"),
              std::string::npos);
    EXPECT_NE(e("port = \"ttyS4\"\ndevice_id = \"rack3\"\n",
                "[[modbus_module]]\nmodule = \"modbus-tcp://h?unit=1&model=410\"\ndevice_id = \"rack3\"\n")
                  .find("serial_port[0].device_id: 'rack3' is also the device ID of [[modbus_module]]"),
              std::string::npos);
    EXPECT_NE(error_of("[[serial_port]]\nport = \"ttyS4\"\n[modbus_server]\nenabled = true\n[[modbus_server.unit]]\n"
                       "id = 1\ncard = \"c\"\n")
                  .find("serial_port: [[serial_port]] publishes over MQTT, but there is no [mqtt]"),
              std::string::npos);
}
