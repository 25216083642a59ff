// SPDX-License-Identifier: MIT
// Modbus URIs, the model table and module naming: no I/O (a TCP bus
// connects on its first request, which these tests never make).
#include <io/error.hpp>
#include <io/modbus.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

using namespace std::chrono_literals;

// The message of the io::invalid_argument that parsing `uri` throws.
std::string refusal(const std::string& uri) {
    try {
        (void)io::parse_modbus_uri(uri);
    } catch (const io::invalid_argument& e) {
        return e.what();
    }
    return "(accepted)";
}

bool has(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

TEST(ModbusUri, Rtu) {
    const auto a = io::parse_modbus_uri(
        "modbus-rtu:/dev/serial/by-card/pci:0000:03:00.0/port1?baud=9600&unit=247&parity=even&stop=2&mode=rs485");
    EXPECT_EQ(a.transport, io::modbus_transport::rtu);
    EXPECT_EQ(a.device, "/dev/serial/by-card/pci:0000:03:00.0/port1");
    EXPECT_EQ(a.serial.baud(), 9600U);
    EXPECT_EQ(a.serial.parity(), io::parity::even);
    EXPECT_EQ(a.serial.stop_bits(), io::stop_bits::two);
    EXPECT_EQ(a.serial.mode(), io::serial_mode::rs485);
    EXPECT_EQ(a.unit, 247U);
    EXPECT_TRUE(a.model.empty());
    EXPECT_EQ(a.timeout, 500ms);
    EXPECT_EQ(a.retries, 2U);
    EXPECT_EQ(io::parse_modbus_uri(io::to_string(a)), a);
    EXPECT_EQ(io::parse_modbus_uri("modbus-rtu:///dev/ttyS4").device, "/dev/ttyS4");
}

TEST(ModbusUri, Tcp) {
    const auto a = io::parse_modbus_uri("modbus-tcp://rack3.example:502?unit=1");
    EXPECT_EQ(a.transport, io::modbus_transport::tcp);
    EXPECT_EQ(a.host, "rack3.example");
    EXPECT_EQ(a.port, 502);
    EXPECT_EQ(a.unit, 1U);
    EXPECT_EQ(io::to_string(a), "modbus-tcp://rack3.example?unit=1");
    const auto b = io::parse_modbus_uri("modbus-tcp://[::1]:1502?model=430&timeout=50&retries=0");
    EXPECT_EQ(b.host, "::1");
    EXPECT_EQ(b.port, 1502);
    EXPECT_EQ(b.model, "430");
    EXPECT_EQ(b.timeout, 50ms);
    EXPECT_EQ(b.retries, 0U);
    EXPECT_EQ(io::to_string(b), "modbus-tcp://[::1]:1502?model=430&timeout=50&retries=0");
    EXPECT_EQ(io::parse_modbus_uri("modbus-tcp://192.0.2.5").port, 502);
}

TEST(ModbusUri, RefusalsSayWhatIsWrongAndWhatIsAllowed) {
    auto r = refusal("modbus-udp://x");
    EXPECT_TRUE(has(r, "unknown scheme 'modbus-udp'") && has(r, "modbus-rtu:DEVICE") && has(r, "modbus-tcp://HOST")) << r;
    r = refusal("/dev/ttyS0");
    EXPECT_TRUE(has(r, "no scheme")) << r;
    r = refusal("modbus-rtu:/dev/ttyS0?baud=fast");
    EXPECT_TRUE(has(r, "baud 'fast' is not valid; allowed 50 to 20000000")) << r;
    r = refusal("modbus-rtu:/dev/ttyS0?baud=10");
    EXPECT_TRUE(has(r, "baud '10' is not valid")) << r;
    r = refusal("modbus-rtu:/dev/ttyS0?parity=mark");
    EXPECT_TRUE(has(r, "parity 'mark' is not valid; allowed none, even, odd")) << r;
    r = refusal("modbus-rtu:/dev/ttyS0?unit=0");
    EXPECT_TRUE(has(r, "unit '0' is not valid; allowed 1 to 247")) << r;
    r = refusal("modbus-tcp://h?unit=248");
    EXPECT_TRUE(has(r, "allowed 1 to 247")) << r;
    r = refusal("modbus-tcp://h?unit=-1");
    EXPECT_TRUE(has(r, "allowed 1 to 247")) << r;
    r = refusal("modbus-tcp://h?model=999");
    EXPECT_TRUE(has(r, "unknown modbus model '999'; known models: 410, 420, 430, 440, 450, 470, 520")) << r;
    r = refusal("modbus-tcp://h?model=462");
    EXPECT_TRUE(has(r, "vendor function codes 0x41-0x44")) << r;
    r = refusal("modbus-tcp://h?baud=9600");
    EXPECT_TRUE(has(r, "unknown parameter 'baud'; allowed unit, model, timeout, retries")) << r;
    r = refusal("modbus-rtu:/dev/ttyS0?speed=9600");
    EXPECT_TRUE(has(r, "unknown parameter 'speed'; allowed baud, parity, stop, mode")) << r;
    r = refusal("modbus-tcp://h?unit=1&unit=2");
    EXPECT_TRUE(has(r, "'unit' is given twice")) << r;
    r = refusal("modbus-tcp://h?unit");
    EXPECT_TRUE(has(r, "'unit' has no value")) << r;
    r = refusal("modbus-tcp://h:0");
    EXPECT_TRUE(has(r, "port '0' is not valid; allowed 1 to 65535")) << r;
    r = refusal("modbus-tcp://h:");
    EXPECT_TRUE(has(r, "port '' is not valid")) << r;
    r = refusal("modbus-tcp://:502");
    EXPECT_TRUE(has(r, "no host")) << r;
    r = refusal("modbus-rtu:ttyS0");
    EXPECT_TRUE(has(r, "absolute path")) << r;
    r = refusal("modbus-rtu:/dev/ttyS0?timeout=0");
    EXPECT_TRUE(has(r, "timeout '0' is not valid; allowed 1 to 10000 (ms)")) << r;
    r = refusal("modbus-rtu:/dev/ttyS0?stop=1.5");
    EXPECT_TRUE(has(r, "stop bits '1.5' is not valid; allowed one, two (or 1, 2)")) << r;
}

TEST(ModbusModel, TableFromTheSeaIoManual) {
    const auto& m410 = io::find_modbus_model("410");
    EXPECT_EQ(m410.inputs, 16U);
    EXPECT_EQ(m410.outputs, 16U);
    EXPECT_EQ(io::find_modbus_model("420").outputs, 8U);
    EXPECT_EQ(io::find_modbus_model("430").inputs, 32U);
    EXPECT_EQ(io::find_modbus_model("430").outputs, 0U);
    EXPECT_EQ(io::find_modbus_model("440").outputs, 32U);
    EXPECT_EQ(io::find_modbus_model("450").outputs, 16U);
    EXPECT_EQ(io::find_modbus_model("470").inputs, 8U);
    EXPECT_EQ(io::find_modbus_model("520").outputs, 8U);
    EXPECT_EQ(io::modbus_models().size(), 7U);
    EXPECT_THROW((void)io::find_modbus_model("463"), io::invalid_argument);
}

TEST(ModbusModule, NamesLinesAndPortsLikeACard) {
    io::modbus_bus bus("modbus-tcp://127.0.0.1:1");
    io::modbus_module m(bus, 5, "420");
    EXPECT_EQ(m.unit(), 5U);
    EXPECT_EQ(m.info().location, "modbus-tcp://127.0.0.1:1?unit=5&model=420");
    EXPECT_EQ(m.info().driver, "modbus");
    EXPECT_EQ(m.info().num_lines, 24U);
    ASSERT_EQ(m.info().ports.size(), 2U);
    EXPECT_EQ(m.info().ports[0].name, "DI");
    EXPECT_TRUE(m.info().ports[0].input);
    EXPECT_EQ(m.info().ports[1].name, "DO");
    EXPECT_EQ(m.info().ports[1].width, 8U);
    EXPECT_EQ(m.find_line("DI0"), 0U);
    EXPECT_EQ(m.find_line("DI15"), 15U);
    EXPECT_EQ(m.find_line("DO0"), 16U);
    EXPECT_EQ(m.line_name(23), "DO7");
    try {
        (void)m.find_line("DO8");
        FAIL();
    } catch (const io::invalid_argument& e) {
        EXPECT_TRUE(has(e.what(), "has no line 'DO8'; its lines are DI0..DI15, DO0..DO7")) << e.what();
    }
    EXPECT_THROW((void)m.find_line("DI"), io::invalid_argument);
    EXPECT_THROW((void)m.find_line("DI+1"), io::invalid_argument);
    EXPECT_THROW((void)m.line_name(24), io::invalid_argument);
    EXPECT_THROW((void)m.read_port("A"), io::invalid_argument);
    EXPECT_THROW(io::modbus_module(bus, 0, "410"), io::invalid_argument);
    EXPECT_THROW(io::modbus_module(bus, 248, "410"), io::invalid_argument);
    EXPECT_THROW(io::modbus_module(bus, 1, "999"), io::invalid_argument);
    EXPECT_THROW(m.start_polling(0ms), io::invalid_argument);
    EXPECT_TRUE(m.present());
}

TEST(ModbusModule, UriMustNameTheUnit) {
    try {
        io::modbus_module m("modbus-tcp://127.0.0.1:1?model=410");
        FAIL();
    } catch (const io::invalid_argument& e) {
        EXPECT_TRUE(has(e.what(), "no unit; add unit=1..247")) << e.what();
    }
}


TEST(ModbusErrors, CategoryMessages) {
    EXPECT_EQ(std::error_code(io::modbus_errc::illegal_data_address).message(), "illegal data address (exception 02)");
    EXPECT_EQ(std::error_code(io::modbus_errc::bad_crc).message(), "reply with a bad CRC");
    EXPECT_STREQ(io::modbus_category().name(), "modbus");
}

}  // namespace
