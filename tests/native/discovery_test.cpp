// SPDX-License-Identifier: MIT
// Discovery and the hotplug monitor against a fake sysfs and udev database
// (umockdev): the device trees that iocard.ko, a mainline DIO driver and a
// serial card produce, with the properties our udev rules add. Runs under
// umockdev-wrapper (see tests/native/CMakeLists.txt).
#include <io/card.hpp>
#include <io/card_monitor.hpp>
#include <io/error.hpp>
#include <io/serial_port.hpp>

#include <gtest/gtest.h>

#include <umockdev.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <vector>
#include <poll.h>
#include <unistd.h>

namespace {

class discovery : public ::testing::Test {
protected:
    void SetUp() override {
        const char* preload = std::getenv("LD_PRELOAD");
        ASSERT_TRUE(preload != nullptr && std::strstr(preload, "umockdev-preload") != nullptr)
            << "run this test under umockdev-wrapper";
        tb_ = umockdev_testbed_new();
    }
    void TearDown() override { g_object_unref(tb_); }

    std::string add(const char* subsystem, const char* name, const std::string& parent,
                    std::initializer_list<const char*> attrs, std::initializer_list<const char*> props) {
        std::vector<const gchar*> a(attrs.begin(), attrs.end());
        a.push_back(nullptr);
        std::vector<const gchar*> p(props.begin(), props.end());
        p.push_back(nullptr);
        gchar* path = umockdev_testbed_add_devicev(tb_, subsystem, name, parent.empty() ? nullptr : parent.c_str(),
                                                   const_cast<gchar**>(a.data()), const_cast<gchar**>(p.data()));
        EXPECT_NE(path, nullptr) << name;
        std::string s = path != nullptr ? path : "";
        g_free(path);
        return s;
    }

    // A virtual cos32 card of iocard.ko: platform device, class device, gpiochip below it.
    std::string add_iocard(int n, const char* label = nullptr) {
        const auto id = std::to_string(n);
        const auto pdev = add("platform", ("iocard-sim." + id).c_str(), "", {}, {});
        const auto cdev = add("iocard", ("iocard" + id).c_str(), pdev,
                              {"model", "cos32\n", "location", ("sim:" + id + "\n").c_str(), "ports",
                               "IN:32:in OUT:32:out\n", "cos", "hw\n", "gpiochip", ("gpiochip" + id + "\n").c_str()},
                              {});
        if (label != nullptr)
            add("gpio", ("gpiochip" + id).c_str(), cdev, {},
                {"IOCARD_CARD", ("iocard" + id).c_str(), "IOCARD_DRIVER", "iocard", "IOCARD_LABEL", label});
        else
            add("gpio", ("gpiochip" + id).c_str(), cdev, {}, {});
        return cdev;
    }

    // A serial port of a qemu-pci-serial-4x card as our rules describe it,
    // numbered by udev/iocard-serial-index (IOCARD_SERIAL_INDEX) unless
    // index is nullptr (the helper did not run).
    void add_uart(const std::string& pci, const char* tty, const char* port, const char* index) {
        const auto devname = std::string("/dev/") + tty;
        std::vector<const char*> props{"DEVNAME",         devname.c_str(),   "IOCARD_MODEL",    "qemu-pci-serial-4x",
                                       "IOCARD_VENDOR",   "QEMU (emulated)", "IOCARD_DRIVER",   "8250_pci",
                                       "IOCARD_SERIAL",   "4:rs232",         "IOCARD_LOCATION", "pci:0000:00:05.0"};
        if (index != nullptr) {
            props.push_back("IOCARD_SERIAL_INDEX");
            props.push_back(index);
        }
        props.push_back(nullptr);
        const gchar* attrs[] = {"port", port, nullptr};
        gchar* path = umockdev_testbed_add_devicev(tb_, "tty", tty, pci.c_str(), const_cast<gchar**>(attrs),
                                                   const_cast<gchar**>(props.data()));
        EXPECT_NE(path, nullptr) << tty;
        g_free(path);
    }

    UMockdevTestbed* tb_ = nullptr;
};

const io::card_info* named(const std::vector<io::card_info>& cards, const std::string& name) {
    for (const auto& c : cards)
        if (c.name == name)
            return &c;
    return nullptr;
}

TEST_F(discovery, no_cards_is_an_empty_list) {
    EXPECT_TRUE(io::enumerate().empty());
    try {
        (void)io::find_card("bench");
        FAIL();
    } catch (const io::invalid_argument& e) {
        EXPECT_STREQ(e.what(), "no card 'bench'; cards present: none");
    }
}

TEST_F(discovery, an_iocard_card_from_its_class_device) {
    add_iocard(0, "bench");
    const auto cards = io::enumerate();
    ASSERT_EQ(cards.size(), 1U);
    const auto& c = cards[0];
    EXPECT_EQ(c.name, "iocard0");
    EXPECT_EQ(c.model, "cos32");
    EXPECT_EQ(c.vendor, "virtual");
    EXPECT_EQ(c.location, "sim:0");
    EXPECT_EQ(c.label, "bench") << "the label comes from udev (IOCARD_LABEL)";
    EXPECT_EQ(c.driver, "iocard");
    EXPECT_EQ(c.gpiochip, "/dev/gpiochip0");
    EXPECT_EQ(c.cos, "hw");
    EXPECT_EQ(c.num_lines, 64U);
    ASSERT_EQ(c.ports.size(), 2U);
    EXPECT_EQ(c.ports[1].name, "OUT");
    EXPECT_EQ(io::find_card("bench").name, "iocard0");
}

TEST_F(discovery, without_udev_rules_the_label_is_the_name) {
    add_iocard(3);
    const auto cards = io::enumerate();
    ASSERT_EQ(cards.size(), 1U);
    EXPECT_EQ(cards[0].label, "iocard3");
}

TEST_F(discovery, a_mainline_dio_card_from_udev_properties) {
    const auto pci = add("pci", "0000:03:00.0", "", {"vendor", "0x494f\n", "device", "0x0fd0\n"}, {});
    add("gpio", "gpiochip7", pci, {},
        {"IOCARD_CARD", "gpiochip7", "IOCARD_MODEL", "acces-pcie-idio-24", "IOCARD_VENDOR", "ACCES I/O Products",
         "IOCARD_DRIVER", "gpio-pcie-idio-24", "IOCARD_PORTS", "OUT:24:out IIN:24:in TTL:8:io", "IOCARD_LOCATION",
         "pci:0000:03:00.0", "IOCARD_LABEL", "gpiochip7"});
    const auto cards = io::enumerate();
    ASSERT_EQ(cards.size(), 1U);
    EXPECT_EQ(cards[0].model, "acces-pcie-idio-24");
    EXPECT_EQ(cards[0].driver, "gpio-pcie-idio-24");
    EXPECT_EQ(cards[0].num_lines, 56U);
    EXPECT_EQ(cards[0].gpiochip, "/dev/gpiochip7");
    EXPECT_EQ(cards[0].location, "pci:0000:03:00.0");
}

TEST_F(discovery, serial_ports_group_into_cards_in_udev_index_order) {
    const auto pci = add("pci", "0000:00:05.0", "", {}, {});
    for (auto [tty, port, index] :
         {std::tuple{"ttyS6", "0xC0D0", "2"}, {"ttyS4", "0xC0C0", "0"}, {"ttyS5", "0xC0C8", "1"}})
        add_uart(pci, tty, port, index);
    const auto usb = add("usb", "1-1", "", {"idVendor", "0403"}, {"DEVTYPE", "usb_device"});
    add("tty", "ttyUSB0", usb, {},
        {"DEVNAME", "/dev/ttyUSB0", "IOCARD_MODEL", "ftdi-ft232", "IOCARD_SERIAL", "1:multi", "IOCARD_LOCATION",
         "usb:1-1", "IOCARD_SERIAL_INDEX", "0"});
    const auto cards = io::enumerate();
    ASSERT_EQ(cards.size(), 2U);
    const auto* uart = named(cards, "ttyS4");
    ASSERT_NE(uart, nullptr);
    ASSERT_EQ(uart->serial_ports.size(), 3U);
    EXPECT_EQ(uart->serial_ports[0].path, "/dev/ttyS4");
    EXPECT_EQ(uart->serial_ports[1].path, "/dev/ttyS5");
    EXPECT_EQ(uart->serial_ports[2].path, "/dev/ttyS6");
    EXPECT_EQ(uart->serial_ports[2].index, 2U);
    EXPECT_EQ(uart->serial_ports[0].modes, "rs232");
    EXPECT_TRUE(uart->gpiochip.empty());
    const auto* ftdi = named(cards, "ttyUSB0");
    ASSERT_NE(ftdi, nullptr);
    EXPECT_EQ(ftdi->model, "ftdi-ft232");
    EXPECT_EQ(ftdi->serial_ports.at(0).modes, "multi");
    EXPECT_EQ(io::find_card("/dev/ttyS6").name, "ttyS4");
}

TEST_F(discovery, the_port_order_is_udevs_not_libios_own) {
    // udev's helper alone works out the order (the by-card names follow it);
    // libio takes its numbers even where the register windows would say
    // otherwise, gaps included (a port that went away).
    const auto pci = add("pci", "0000:00:05.0", "", {}, {});
    add_uart(pci, "ttyS4", "0xC0C0", "3");
    add_uart(pci, "ttyS5", "0xC0C8", "0");
    add_uart(pci, "ttyS7", "0xC0D8", "1");
    const auto cards = io::enumerate();
    ASSERT_EQ(cards.size(), 1U);
    const auto& ports = cards[0].serial_ports;
    ASSERT_EQ(ports.size(), 3U);
    EXPECT_EQ(ports[0].path, "/dev/ttyS5");
    EXPECT_EQ(ports[0].index, 0U);
    EXPECT_EQ(ports[1].path, "/dev/ttyS7");
    EXPECT_EQ(ports[1].index, 1U);
    EXPECT_EQ(ports[2].path, "/dev/ttyS4");
    EXPECT_EQ(ports[2].index, 3U);
    EXPECT_EQ(cards[0].name, "ttyS5") << "a serial card is named after its first port";
    EXPECT_EQ(io::serial_port_path(cards[0], 3), "/dev/ttyS4");
    EXPECT_THROW((void)io::serial_port_path(cards[0], 2), io::invalid_argument);
}

TEST_F(discovery, ports_without_a_udev_index_follow_the_numbered_ones) {
    // The rule's helper missing or failing: those ports come last, in device
    // path order, numbered on after the highest index.
    const auto pci = add("pci", "0000:00:05.0", "", {}, {});
    add_uart(pci, "ttyS9", "0xC0C0", nullptr);
    add_uart(pci, "ttyS8", "0xC0C8", nullptr);
    add_uart(pci, "ttyS5", "0xC0D0", "1");
    const auto cards = io::enumerate();
    ASSERT_EQ(cards.size(), 1U);
    const auto& ports = cards[0].serial_ports;
    ASSERT_EQ(ports.size(), 3U);
    EXPECT_EQ(ports[0].path, "/dev/ttyS5");
    EXPECT_EQ(ports[0].index, 1U);
    EXPECT_EQ(ports[1].path, "/dev/ttyS8");
    EXPECT_EQ(ports[1].index, 2U);
    EXPECT_EQ(ports[2].path, "/dev/ttyS9");
    EXPECT_EQ(ports[2].index, 3U);
}

TEST_F(discovery, cards_of_one_model_are_indexed_by_location) {
    add_iocard(2);
    add_iocard(1);
    const auto cards = io::enumerate();
    ASSERT_EQ(cards.size(), 2U);
    EXPECT_EQ(io::find_card("cos32#0").location, "sim:1");
    EXPECT_EQ(io::find_card("cos32#1").location, "sim:2");
}

TEST_F(discovery, a_half_made_card_is_not_listed) {
    const auto pdev = add("platform", "iocard-sim.9", "", {}, {});
    add("iocard", "iocard9", pdev, {"model", "cos32\n", "location", "sim:9\n", "gpiochip", "\n"}, {});
    EXPECT_TRUE(io::enumerate().empty()) << "no gpiochip yet: its own event will announce it";
}

TEST_F(discovery, a_card_whose_chip_is_gone_is_not_listed) {
    const auto pdev = add("platform", "iocard-sim.8", "", {}, {});
    add("iocard", "iocard8", pdev,
        {"model", "cos32\n", "location", "sim:8\n", "ports", "IN:32:in OUT:32:out\n", "gpiochip", "gpiochip8\n"}, {});
    EXPECT_TRUE(io::enumerate().empty()) << "the class device goes after its gpiochip: not a card any more";
}

bool wait_readable(int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, ms) == 1;
}

TEST_F(discovery, the_monitor_reports_arrival_and_departure) {
    io::card_monitor mon;
    EXPECT_TRUE(mon.cards().empty());
    const auto cdev = add_iocard(4, "press-4");
    umockdev_testbed_uevent(tb_, (cdev + "/gpiochip4").c_str(), "add");
    ASSERT_TRUE(wait_readable(mon.fd(), 2000)) << "no uevent reached the monitor";
    auto events = mon.read_events();
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].change, io::card_event::kind::added);
    EXPECT_EQ(events[0].card.label, "press-4");
    EXPECT_EQ(mon.cards().size(), 1U);

    umockdev_testbed_uevent(tb_, (cdev + "/gpiochip4").c_str(), "remove");
    umockdev_testbed_remove_device(tb_, cdev.c_str());
    ASSERT_TRUE(wait_readable(mon.fd(), 2000));
    events = mon.read_events();
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].change, io::card_event::kind::removed);
    EXPECT_EQ(events[0].card.name, "iocard4");
    EXPECT_TRUE(mon.cards().empty());
    EXPECT_EQ(mon.resyncs(), 0U);
}

TEST_F(discovery, a_card_leaving_is_reported_once_though_sysfs_lags_its_events) {
    // udev hands out a remove event while sysfs may still show the device
    // (the kernel sends it before it unlinks the directory): the card must
    // not come back as 'added' from that stale view, nor leave twice when
    // the event of its gpiochip follows in another batch.
    io::card_monitor mon;
    const auto cdev = add_iocard(5);
    umockdev_testbed_uevent(tb_, (cdev + "/gpiochip5").c_str(), "add");
    ASSERT_TRUE(wait_readable(mon.fd(), 2000));
    ASSERT_EQ(mon.read_events().size(), 1U);

    umockdev_testbed_uevent(tb_, cdev.c_str(), "remove");  // the class device, still in sysfs
    ASSERT_TRUE(wait_readable(mon.fd(), 2000));
    auto events = mon.read_events();
    ASSERT_EQ(events.size(), 1U) << "a removed card came back from the stale sysfs";
    EXPECT_EQ(events[0].change, io::card_event::kind::removed);
    EXPECT_TRUE(mon.cards().empty());

    umockdev_testbed_uevent(tb_, (cdev + "/gpiochip5").c_str(), "remove");  // its chip, next batch
    ASSERT_TRUE(wait_readable(mon.fd(), 2000));
    EXPECT_TRUE(mon.read_events().empty()) << "the card left twice";
    for (const auto& dev : {cdev + "/gpiochip5", cdev, cdev.substr(0, cdev.rfind('/'))})
        umockdev_testbed_remove_device(tb_, dev.c_str());

    // Made again (same name, same place): announced again.
    const auto again = add_iocard(5);
    umockdev_testbed_uevent(tb_, again.c_str(), "add");
    umockdev_testbed_uevent(tb_, (again + "/gpiochip5").c_str(), "add");
    ASSERT_TRUE(wait_readable(mon.fd(), 2000));
    events = mon.read_events();
    for (int i = 0; i < 20 && events.empty(); ++i) {
        (void)wait_readable(mon.fd(), 100);
        events = mon.read_events();
    }
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].change, io::card_event::kind::added);
    EXPECT_EQ(events[0].card.name, "iocard5");
}

TEST_F(discovery, a_card_is_gone_from_the_first_of_its_devices_to_go) {
    // Linux 6.12 removes the GPIO sysfs class entry (gpiochip<base>) first,
    // while the card and its gpiochip are still all there: that is the
    // card leaving, once, not a card replaced by itself (it was reported
    // removed, added, then removed again).
    io::card_monitor mon;
    const auto cdev = add_iocard(6);
    const auto legacy = add("gpio", "gpiochip512", cdev, {}, {});
    umockdev_testbed_uevent(tb_, (cdev + "/gpiochip6").c_str(), "add");
    ASSERT_TRUE(wait_readable(mon.fd(), 2000));
    ASSERT_EQ(mon.read_events().size(), 1U);

    umockdev_testbed_uevent(tb_, legacy.c_str(), "remove");
    ASSERT_TRUE(wait_readable(mon.fd(), 2000));
    auto events = mon.read_events();
    ASSERT_EQ(events.size(), 1U) << "the card came back as 'added'";
    EXPECT_EQ(events[0].change, io::card_event::kind::removed);
    EXPECT_EQ(events[0].card.name, "iocard6");
    EXPECT_TRUE(mon.cards().empty());

    // The rest goes in later batches: the gpiochip, then the class device
    // (sysfs still shows it with its gpiochip attribute in between).
    umockdev_testbed_remove_device(tb_, legacy.c_str());
    umockdev_testbed_uevent(tb_, (cdev + "/gpiochip6").c_str(), "remove");
    ASSERT_TRUE(wait_readable(mon.fd(), 2000));
    EXPECT_TRUE(mon.read_events().empty()) << "the card left twice";
    umockdev_testbed_remove_device(tb_, (cdev + "/gpiochip6").c_str());
    const auto other = add_iocard(7);  // a new card meanwhile: a change that makes libio scan
    umockdev_testbed_uevent(tb_, (other + "/gpiochip7").c_str(), "add");
    ASSERT_TRUE(wait_readable(mon.fd(), 2000));
    events = mon.read_events();
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].change, io::card_event::kind::added);
    EXPECT_EQ(events[0].card.name, "iocard7");
    umockdev_testbed_uevent(tb_, cdev.c_str(), "remove");
    ASSERT_TRUE(wait_readable(mon.fd(), 2000));
    EXPECT_TRUE(mon.read_events().empty()) << "the card left twice";
    ASSERT_EQ(mon.cards().size(), 1U);
    EXPECT_EQ(mon.cards()[0].name, "iocard7");
}

TEST_F(discovery, a_card_made_again_before_its_removal_is_read_is_a_new_card) {
    // udev's events lag sysfs: by the time the monitor reads that iocard3
    // left, another iocard3 may stand at the same place. The first leaves
    // and the second arrives, once each, however the events fall into
    // batches.
    io::card_monitor mon;
    const auto cdev = add_iocard(3, "old");
    umockdev_testbed_uevent(tb_, (cdev + "/gpiochip3").c_str(), "add");
    ASSERT_TRUE(wait_readable(mon.fd(), 2000));
    ASSERT_EQ(mon.read_events().size(), 1U);

    for (const auto& dev : {cdev + "/gpiochip3", cdev, cdev.substr(0, cdev.rfind('/'))})
        umockdev_testbed_remove_device(tb_, dev.c_str());
    const auto again = add_iocard(3, "new");
    ASSERT_EQ(again, cdev);
    umockdev_testbed_uevent(tb_, (cdev + "/gpiochip3").c_str(), "remove");  // the first card's, late
    ASSERT_TRUE(wait_readable(mon.fd(), 2000));
    auto events = mon.read_events();
    ASSERT_EQ(events.size(), 2U);
    EXPECT_EQ(events[0].change, io::card_event::kind::removed);
    EXPECT_EQ(events[0].card.label, "old");
    EXPECT_EQ(events[1].change, io::card_event::kind::added);
    EXPECT_EQ(events[1].card.label, "new");

    umockdev_testbed_uevent(tb_, cdev.c_str(), "remove");  // the first card's class device, late
    umockdev_testbed_uevent(tb_, cdev.c_str(), "add");     // the second card's events
    umockdev_testbed_uevent(tb_, (cdev + "/gpiochip3").c_str(), "add");
    ASSERT_TRUE(wait_readable(mon.fd(), 2000));
    for (int i = 0; i < 10; ++i) {
        EXPECT_TRUE(mon.read_events().empty()) << "the second card was taken for the first";
        if (!wait_readable(mon.fd(), 100))
            break;
    }
    ASSERT_EQ(mon.cards().size(), 1U);
    EXPECT_EQ(mon.cards()[0].label, "new");
}

TEST_F(discovery, events_of_other_devices_change_nothing) {
    io::card_monitor mon;
    const auto tty = add("tty", "ttyS0", "", {}, {"DEVNAME", "/dev/ttyS0"});
    umockdev_testbed_uevent(tb_, tty.c_str(), "add");
    ASSERT_TRUE(wait_readable(mon.fd(), 2000));
    EXPECT_TRUE(mon.read_events().empty());
    EXPECT_TRUE(mon.cards().empty());
}

}  // namespace

// The fake sysfs needs umockdev's preload library: start again under its
// wrapper when it is not in place (also for ctest's test discovery).
int main(int argc, char** argv) {
    const char* preload = std::getenv("LD_PRELOAD");
    if (preload == nullptr || std::strstr(preload, "umockdev-preload") == nullptr) {
        std::vector<char*> args{const_cast<char*>("umockdev-wrapper")};
        args.insert(args.end(), argv, argv + argc);
        args.push_back(nullptr);
        ::setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 0);
        // The fake sysfs on tmpfs, which does not hand a removed directory's
        // inode number to the next one, as sysfs does not (libio tells a
        // card made again at the same place by its inode).
        if (::access("/dev/shm", W_OK) == 0)
            ::setenv("TMPDIR", "/dev/shm", 1);
        ::execvp("umockdev-wrapper", args.data());
        std::perror("umockdev-wrapper");
        return 127;
    }
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
