// SPDX-License-Identifier: MIT
// Configured Modbus modules: the format of /etc/libio/modbus.d/*.conf, what
// it refuses (with file, line, what was wrong and what is allowed), and the
// directory libio reads.
#include <io/error.hpp>
#include <io/modbus_config.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

/// The message of the io::invalid_argument that parsing `text` throws, or "" if none.
std::string refusal(const std::string& text) {
    try {
        (void)io::parse_modbus_config(text, "t.conf");
    } catch (const io::invalid_argument& e) {
        return e.what();
    }
    return {};
}

TEST(ModbusConfig, ReadsModulesWithTheirUriModelAndPoll) {
    const auto ms = io::parse_modbus_config(
        "# SeaI/O modules of rack 3\n"
        "\n"
        "[rack3-in]\n"
        "uri = modbus-tcp://rack3.example:1502?unit=1   # the Ethernet base\n"
        "model = 430\n"
        "poll = 250ms\n"
        "  ; an indented comment\n"
        "[pump.relays_2]\n"
        "\turi=modbus-rtu:/dev/serial/by-card/pci:0000:03:00.0/port1?baud=9600&mode=rs485&unit=247\t\n"
        "poll = 2s\n"
        "[auto]\n"
        "uri = modbus-tcp://192.0.2.5?unit=3&model=470\n"
        "model = auto\n"
        "[plain]\n"
        "uri = modbus-tcp://192.0.2.6?unit=4\n"
        "poll = 40",
        "site.conf");
    ASSERT_EQ(ms.size(), 4U);
    EXPECT_EQ(ms[0].name, "rack3-in");
    EXPECT_EQ(ms[0].address.host, "rack3.example");
    EXPECT_EQ(ms[0].address.port, 1502);
    EXPECT_EQ(ms[0].address.unit, 1U);
    EXPECT_EQ(ms[0].address.model, "430");
    EXPECT_EQ(ms[0].poll, 250ms);
    EXPECT_EQ(ms[0].file, "site.conf");
    EXPECT_EQ(ms[0].line, 3U);
    EXPECT_EQ(ms[1].name, "pump.relays_2");
    EXPECT_EQ(ms[1].address.transport, io::modbus_transport::rtu);
    EXPECT_EQ(ms[1].address.device, "/dev/serial/by-card/pci:0000:03:00.0/port1");
    EXPECT_EQ(ms[1].address.serial.mode(), io::serial_mode::rs485);
    EXPECT_EQ(ms[1].address.unit, 247U);
    EXPECT_EQ(ms[1].address.model, "");  // auto: read with 0x45
    EXPECT_EQ(ms[1].poll, 2000ms);
    EXPECT_EQ(ms[1].line, 8U);
    EXPECT_EQ(ms[2].address.model, "470");  // the URI's model; "auto" does not undo it
    EXPECT_EQ(ms[3].poll, 40ms);
    EXPECT_TRUE(io::parse_modbus_config("", "empty.conf").empty());
    EXPECT_TRUE(io::parse_modbus_config("# nothing yet\n\n", "empty.conf").empty());
    EXPECT_EQ(io::parse_modbus_config("[d]\nuri = modbus-tcp://h?unit=1\n", "x").at(0).poll, 100ms);  // default
}

TEST(ModbusConfig, RefusalsNameFileLineWhatWasWrongAndWhatIsAllowed) {
    EXPECT_EQ(refusal("uri = modbus-tcp://h?unit=1\n"),
              "t.conf:1: 'uri' comes before any [NAME]; begin a module with [NAME]");
    EXPECT_EQ(refusal("[a]\nuri modbus-tcp://h?unit=1\n"),
              "t.conf:2: 'uri modbus-tcp://h?unit=1' is neither [NAME] nor KEY = VALUE");
    EXPECT_EQ(refusal("[a\n"), "t.conf:1: section '[a' lacks its closing ']'; write [NAME]");
    EXPECT_EQ(refusal("[modbus-x]\n"),
              "t.conf:1: module name 'modbus-x' is not valid; allowed 1 to 64 letters, digits, '.', '_' and '-', "
              "beginning with a letter or digit and not with 'modbus-'");
    EXPECT_NE(refusal("[a b]\n").find("module name 'a b' is not valid"), std::string::npos);
    EXPECT_NE(refusal("[-a]\n").find("module name '-a' is not valid"), std::string::npos);
    EXPECT_NE(refusal("[]\n").find("module name '' is not valid"), std::string::npos);
    EXPECT_NE(refusal("[" + std::string(65, 'x') + "]\n").find("is not valid"), std::string::npos);
    EXPECT_EQ(refusal("[a]\nuri = modbus-tcp://h?unit=1\n[a]\n"),
              "t.conf:3: module 'a' is configured twice (also at line 1)");
    EXPECT_EQ(refusal("[a]\nmodel = 410\n\n[b]\nuri = modbus-tcp://h?unit=2\n"),
              "t.conf:1: module 'a' has no uri; add uri = modbus-rtu:DEVICE?unit=N or modbus-tcp://HOST[:PORT]?unit=N");
    EXPECT_EQ(refusal("[a]\nuri = modbus-tcp://h?unit=1\n[b]\n"),
              "t.conf:3: module 'b' has no uri; add uri = modbus-rtu:DEVICE?unit=N or modbus-tcp://HOST[:PORT]?unit=N");
    EXPECT_EQ(refusal("[a]\nuri = modbus-tcp://h\n"), "t.conf:2: the uri of module 'a' gives no unit; add unit=1..247");
    EXPECT_EQ(refusal("[a]\nuri = modbus-udp://h?unit=1\n"),
              "t.conf:2: modbus URI 'modbus-udp://h?unit=1': unknown scheme 'modbus-udp'; allowed "
              "modbus-rtu:DEVICE?PARAMS and modbus-tcp://HOST[:PORT]?PARAMS");
    EXPECT_EQ(refusal("[a]\nuri = modbus-rtu:/dev/ttyS0?unit=1&baud=fast\n"),
              "t.conf:2: modbus URI 'modbus-rtu:/dev/ttyS0?unit=1&baud=fast': baud 'fast' is not valid; allowed 50 "
              "to 20000000");
    EXPECT_NE(refusal("[a]\nuri = modbus-tcp://h?unit=1\nmodel = 999\n")
                  .find("t.conf:3: unknown modbus model '999'; known models: 410, 420, 430, 440, 450, 470, 520, or auto"),
              std::string::npos)
        << refusal("[a]\nuri = modbus-tcp://h?unit=1\nmodel = 999\n");
    EXPECT_EQ(refusal("[a]\nuri = modbus-tcp://h?unit=1&model=410\nmodel = 430\n"),
              "t.conf:3: model 430 differs from model=410 in the uri; give the model once");
    EXPECT_EQ(refusal("[a]\nuri = modbus-tcp://h?unit=1\npoll = 0\n"),
              "t.conf:3: poll '0' is not valid; allowed 1ms to 1h, as N (ms), Nms or Ns");
    EXPECT_NE(refusal("[a]\nuri = modbus-tcp://h?unit=1\npoll = 3601s\n").find("poll '3601s' is not valid"),
              std::string::npos);
    EXPECT_NE(refusal("[a]\nuri = modbus-tcp://h?unit=1\npoll = 10 ms\n").find("poll '10 ms' is not valid"),
              std::string::npos);
    EXPECT_NE(refusal("[a]\nuri = modbus-tcp://h?unit=1\npoll = 1m\n").find("poll '1m' is not valid"), std::string::npos);
    EXPECT_EQ(refusal("[a]\nuri = modbus-tcp://h?unit=1\npoll = \n"),
              "t.conf:3: poll '' is not valid; allowed 1ms to 1h, as N (ms), Nms or Ns");
    EXPECT_EQ(refusal("[a]\nuri = modbus-tcp://h?unit=1\npol = 5\n"),
              "t.conf:3: unknown key 'pol'; allowed uri, model, poll");
    EXPECT_EQ(refusal("[a]\nuri = modbus-tcp://h?unit=1\nuri = modbus-tcp://h?unit=2\n"),
              "t.conf:3: 'uri' is given twice for module 'a'");
    EXPECT_EQ(io::parse_modbus_config("[a]\nuri = modbus-tcp://h?unit=1\npoll = 3600s\n", "x").at(0).poll, 3600000ms);
    EXPECT_EQ(io::parse_modbus_config("[a]\nuri = modbus-tcp://h?unit=1\npoll = 1ms\n", "x").at(0).poll, 1ms);
}

// A directory of its own under the test's temporary directory.
class ModbusConfigDir : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("libio-config-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "modbus.d");
    }
    void TearDown() override { fs::remove_all(dir_); }
    void write(const std::string& name, const std::string& text) { std::ofstream{dir_ / "modbus.d" / name} << text; }
    fs::path dir_;
};

TEST_F(ModbusConfigDir, ReadsTheConfFilesInNameOrder) {
    write("20-b.conf", "[b]\nuri = modbus-tcp://h?unit=2\n");
    write("10-a.conf", "[a]\nuri = modbus-tcp://h?unit=1\n");
    write("10-a.conf.dpkg-old", "[old]\nuri = modbus-tcp://h?unit=9\n");
    write("notes.txt", "not a configuration file");
    const auto ms = io::load_modbus_config(dir_);
    ASSERT_EQ(ms.size(), 2U);
    EXPECT_EQ(ms[0].name, "a");
    EXPECT_EQ(ms[0].file, (dir_ / "modbus.d" / "10-a.conf").string());
    EXPECT_EQ(ms[1].name, "b");
    EXPECT_TRUE(io::load_modbus_config(dir_ / "none").empty());  // no directory: no modules
}

TEST_F(ModbusConfigDir, ANameInTwoFilesIsRefusedNamingBoth) {
    write("1.conf", "[a]\nuri = modbus-tcp://h?unit=1\n");
    write("2.conf", "\n[a]\nuri = modbus-tcp://h?unit=2\n");
    try {
        (void)io::load_modbus_config(dir_);
        FAIL() << "a name configured twice was taken";
    } catch (const io::invalid_argument& e) {
        EXPECT_EQ(std::string(e.what()), (dir_ / "modbus.d/2.conf").string() + ":2: module 'a' is configured twice (also at " +
                                             (dir_ / "modbus.d/1.conf").string() + ":1)");
    }
}

TEST_F(ModbusConfigDir, ModulesOnOneSerialPortMustAgreeOnItsSettings) {
    write("a.conf", "[a]\nuri = modbus-rtu:/dev/ttyS4?baud=19200&unit=1\n"
                    "[b]\nuri = modbus-rtu:/dev/ttyS4?baud=19200&unit=2&model=430\n");
    EXPECT_EQ(io::load_modbus_config(dir_).size(), 2U);  // same settings, other units and models: one bus
    write("b.conf", "[c]\nuri = modbus-rtu:/dev/ttyS4?baud=9600&unit=3\n");
    try {
        (void)io::load_modbus_config(dir_);
        FAIL() << "two settings of one port were taken";
    } catch (const io::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("b.conf:1: module 'c' is on serial port /dev/ttyS4 with other settings than "
                                             "module 'a' ("),
                  std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("modules on one port must give the same baud, parity, stop, mode, timeout "
                                             "and retries"),
                  std::string::npos)
            << e.what();
    }
}

TEST_F(ModbusConfigDir, ABadFileIsNamedInTheError) {
    write("site.conf", "[a]\nuri = modbus-tcp://h?unit=1\nspeed = 9600\n");
    try {
        (void)io::load_modbus_config(dir_);
        FAIL();
    } catch (const io::invalid_argument& e) {
        EXPECT_EQ(std::string(e.what()), (dir_ / "modbus.d/site.conf").string() + ":3: unknown key 'speed'; allowed uri, model, poll");
    }
}

// The example the packages install: nothing configured as shipped, and its
// commented modules, uncommented, are read as it says.
TEST(ModbusConfig, TheShippedExampleConfiguresNothingAndItsExamplesRead) {
    std::ifstream in{LIBIO_EXAMPLE_MODBUS_CONFIG};
    ASSERT_TRUE(in) << LIBIO_EXAMPLE_MODBUS_CONFIG;
    std::string text;
    std::string uncommented;
    bool examples = false;
    for (std::string line; std::getline(in, line);) {
        text += line + "\n";
        examples = examples || line.starts_with("# [");
        uncommented += (examples && line.starts_with("# ") ? line.substr(2) : line) + "\n";
    }
    EXPECT_TRUE(io::parse_modbus_config(text, "example.conf").empty());
    const auto ms = io::parse_modbus_config(uncommented, "example.conf");
    ASSERT_EQ(ms.size(), 2U);
    EXPECT_EQ(ms[0].name, "rack3-inputs");
    EXPECT_EQ(ms[0].address.model, "430");
    EXPECT_EQ(ms[0].poll, 50ms);
    EXPECT_EQ(ms[1].address.serial.mode(), io::serial_mode::rs485);
    EXPECT_EQ(ms[1].address.model, "");
}

TEST(ModbusConfig, DirectoryFromTheEnvironmentElseEtcLibio) {
    const char* before = std::getenv("LIBIO_CONFIG_DIR");
    const std::string saved = before != nullptr ? before : "";
    ::setenv("LIBIO_CONFIG_DIR", "/tmp/elsewhere", 1);
    EXPECT_EQ(io::config_dir(), fs::path("/tmp/elsewhere"));
    ::setenv("LIBIO_CONFIG_DIR", "", 1);
    EXPECT_EQ(io::config_dir(), fs::path("/etc/libio"));
    ::unsetenv("LIBIO_CONFIG_DIR");
    EXPECT_EQ(io::config_dir(), fs::path("/etc/libio"));
    if (before != nullptr)
        ::setenv("LIBIO_CONFIG_DIR", saved.c_str(), 1);
}

TEST(ModbusSite, ModulesBeforeTheyOpenAreDescribedByTheirConfiguration) {
    io::modbus_site site(io::parse_modbus_config("[in]\nuri = modbus-tcp://192.0.2.1?unit=5&model=430\n"
                                                 "[any]\nuri = modbus-tcp://192.0.2.1?unit=6\n",
                                                 "x"));
    ASSERT_EQ(site.size(), 2U);
    EXPECT_EQ(site.find("any"), 1U);
    EXPECT_FALSE(site.find("none"));
    EXPECT_EQ(site.module(0), nullptr);
    const auto c = site.info(0);
    EXPECT_EQ(c.name, "in");
    EXPECT_EQ(c.model, "seaio-430");
    EXPECT_EQ(c.location, "modbus-tcp://192.0.2.1?unit=5&model=430");
    EXPECT_EQ(c.driver, "modbus");
    EXPECT_EQ(site.info(1).model, "");  // auto: not known before the module answers
    EXPECT_EQ(site.error(0), "");
}

}  // namespace
