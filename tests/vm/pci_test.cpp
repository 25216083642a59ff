// SPDX-License-Identifier: MIT
// iocard.ko on a PCI board: libio's test board (kmod/README.md), carried by
// QEMU's ivshmem-doorbell behind a hot-pluggable PCIe root port, its
// registers modelled on the host (tests/vm/pciboard.py). The path of every
// real board: probe through driver_override, the BAR accessors, MSI-X
// change-of-state interrupts, a board that misbehaves, and removal (hot
// unplug, the device's remove attribute, unbind) while lines are in use.
// Runs in `tests/vm/vm.py run --pci-board msix`.
#include "cable.hpp"
#include "pci_board.hpp"
#include "sim_card.hpp"
#include "tool_runner.hpp"
#include "vm_test.hpp"

#include <io/io.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <thread>

using io::test::pci_board;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const fs::path pci_devices = "/sys/bus/pci/devices";

/// The board's PCI address (vendor 1af4, device 1110); empty while unplugged.
std::string board_bdf() {
    for (const auto& d : fs::directory_iterator(pci_devices)) {
        try {
            if (io::test::read_attr(d.path() / "vendor") == "0x1af4" &&
                io::test::read_attr(d.path() / "device") == "0x1110")
                return d.path().filename();
        } catch (const std::exception&) {
            // gone meanwhile
        }
    }
    return {};
}

std::string driver_of(const std::string& bdf) {
    std::error_code ec;
    const auto link = fs::read_symlink(pci_devices / bdf / "driver", ec);
    return ec ? std::string{} : link.filename().string();
}

int module_refcount() {
    return std::stoi(io::test::read_attr("/sys/module/iocard/refcnt"));
}

/// Waits until cond() holds, up to `limit`; its last answer.
template <typename Cond>
bool eventually(Cond cond, std::chrono::milliseconds limit = 20s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > end)
            return cond();
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

class pci : public io::test::vm_test {
protected:
    static void SetUpTestSuite() {
        cable_ = std::make_unique<io::test::cable>();
        board_ = std::make_unique<pci_board>(*cable_);
        // A low chatter limit, so that the host model's chatter (one change
        // per 100 us at best under TCG) is over it.
        ASSERT_TRUE(io::test::load_iocard("cos_max_rate=200")) << "insmod " << io::test::iocard_ko();
    }
    static void TearDownTestSuite() {
        // As the suite found them (and --gtest_repeat starts over): the
        // board taken by no driver of its ID, iocard not loaded.
        if (const auto bdf = board_bdf(); !bdf.empty()) {
            EXPECT_EQ(io::test::write_attr(pci_devices / bdf / "driver_override", "\n"), 0);
        }
        EXPECT_TRUE(io::test::unload_iocard());
        board_.reset();
        cable_.reset();
    }

    /// Binds the board to iocard the documented way; the card's name.
    static std::string bind() {
        std::string bdf;
        EXPECT_TRUE(eventually([&] { return !(bdf = board_bdf()).empty(); })) << "no test board on the PCI bus";
        if (driver_of(bdf) != "iocard") {
            EXPECT_EQ(io::test::write_attr(pci_devices / bdf / "driver_override", "iocard"), 0);
            EXPECT_EQ(io::test::write_attr("/sys/bus/pci/drivers_probe", bdf), 0);
        }
        EXPECT_TRUE(eventually([&] { return driver_of(bdf) == "iocard"; })) << "the board did not bind";
        EXPECT_EQ(io::test::run("udevadm settle --timeout=30"), 0);
        return io::find_card("pci:" + bdf).name;
    }

    static std::unique_ptr<io::test::cable> cable_;
    static std::unique_ptr<pci_board> board_;
};

std::unique_ptr<io::test::cable> pci::cable_;
std::unique_ptr<pci_board> pci::board_;

TEST_F(pci, the_board_is_bound_through_driver_override_only) {
    const auto hello = board_->hello();
    EXPECT_EQ(hello.irq, pci_board::irq_mode::msix);
    EXPECT_TRUE(hello.present);
    const auto bdf = board_bdf();
    ASSERT_FALSE(bdf.empty());
    EXPECT_EQ(driver_of(bdf), "") << "iocard must not take ivshmem by its ID";
    const auto name = bind();
    const auto card = io::find_card(name);
    EXPECT_EQ(card.model, "test-ivshmem-cos32");
    EXPECT_EQ(card.location, "pci:" + bdf);
    EXPECT_EQ(card.num_lines, 64U);
    EXPECT_EQ(card.cos, "hw");
    EXPECT_TRUE(fs::exists(pci_devices / bdf / "msi_irqs")) << "MSI-X vectors in use";
}

TEST_F(pci, outputs_and_inputs_go_through_the_bars) {
    io::chip chip{io::find_card(bind()).gpiochip};
    const auto out_port = chip.find_port("OUT");
    const auto in_port = chip.find_port("IN");
    auto out = chip.prepare_request().add(out_port, io::line_config::output()).make();
    auto in = chip.prepare_request().add(in_port, io::line_config::input()).make();
    const auto doorbells = board_->counts().doorbells;
    out.write_port(out_port, 0xa5c3'0f01U);
    EXPECT_EQ(board_->out(), 0xa5c3'0f01U) << "the host model sees the output latch";
    EXPECT_GT(board_->counts().doorbells, doorbells) << "the driver rings the host after a write";
    board_->in(0x1234'8001U);
    EXPECT_EQ(in.read_port(in_port), 0x1234'8001U);
    board_->in(0);
    EXPECT_EQ(in.read_port(in_port), 0U);
}

TEST_F(pci, change_of_state_reaches_libio_and_gpiomon) {
    const auto card = io::find_card(bind());
    io::chip chip{card.gpiochip};
    auto in = chip.prepare_request().add("IN3", io::line_config::input(io::edge::both)).make();
    // gpiomon on IN5 of the same board: every change below moves IN3 and
    // IN5 in one write, and the next change waits until both libio and
    // gpiomon (which flushes each event) have their edge. Each line's event
    // comes from its own interrupt thread, which reads the line's level: a
    // change made while one of them is still pending would fold two edges
    // into one, so waiting for only one of them is no handshake.
    io::test::tool_process mon{{"/usr/bin/gpiomon", "-c", card.gpiochip, "-n", "6", "-F", "%e", "IN5"}};
    ASSERT_TRUE(eventually([&] { return mon.waiting_in_poll(); })) << "gpiomon did not start waiting";
    ASSERT_EQ(chip.info(chip.find_line("IN5").value()).edges, io::edge::both) << "gpiomon did not request IN5";
    std::vector<io::edge_event> got;
    std::array<io::edge_event, 8> buf{};
    for (unsigned i = 0; i < 6; ++i) {
        board_->in(i % 2 == 0 ? 0x28U : 0U);
        ASSERT_TRUE(in.wait_edge_events(10s)) << "no edge " << i + 1;
        const auto n = in.read_edge_events(buf);
        got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
        ASSERT_TRUE(mon.read_line(10s)) << "gpiomon printed no edge " << i + 1;
    }
    ASSERT_EQ(got.size(), 6U);
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].kind, i % 2 == 0 ? io::edge::rising : io::edge::falling) << i;
        EXPECT_EQ(got[i].seqno, i + 1);
    }
    EXPECT_EQ(in.lost_events(), 0U);
    const auto r = mon.wait(20s);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "1\n2\n1\n2\n1\n2\n") << "gpiomon: rising (1) and falling (2) edges";
}

TEST_F(pci, interrupts_without_status_are_spurious_not_edges) {
    const auto name = bind();
    io::chip chip{io::find_card(name).gpiochip};
    auto in = chip.prepare_request().add("IN0", io::line_config::input(io::edge::both)).make();
    const auto attr = fs::path("/sys/class/iocard") / name / "spurious_irqs";
    const auto before = std::stoull(io::test::read_attr(attr));
    board_->fault(pci_board::fault_kind::spurious, 5);
    // MSI-X messages the guest has not taken yet merge: 1 to 5 of them.
    EXPECT_TRUE(eventually([&] { return std::stoull(io::test::read_attr(attr)) > before; }));
    EXPECT_LE(std::stoull(io::test::read_attr(attr)), before + 5);
    EXPECT_FALSE(in.wait_edge_events(300ms)) << "an interrupt with no status is no edge";
}

TEST_F(pci, a_board_that_reads_all_ones_raises_no_edges) {
    const auto name = bind();
    io::chip chip{io::find_card(name).gpiochip};
    auto in = chip.prepare_request().add(chip.find_port("IN"), io::line_config::input(io::edge::both)).make();
    board_->fault(pci_board::fault_kind::gone);
    board_->fault(pci_board::fault_kind::spurious, 3);
    EXPECT_FALSE(in.wait_edge_events(500ms)) << "an all-ones status of a board gone is no 32 edges";
    board_->fault(pci_board::fault_kind::none);
    board_->in(1);
    ASSERT_TRUE(in.wait_edge_events(10s)) << "the board back, edges flow again";
    std::array<io::edge_event, 40> buf{};
    EXPECT_EQ(in.read_edge_events(buf), 1U);
    EXPECT_EQ(buf[0].kind, io::edge::rising);
    board_->in(0);
    ASSERT_TRUE(in.wait_edge_events(10s));
    (void)in.read_edge_events(buf);
}

TEST_F(pci, a_chattering_input_gets_its_change_of_state_turned_off) {
    const auto name = bind();
    io::chip chip{io::find_card(name).gpiochip};
    auto in = chip.prepare_request().add("IN7", io::line_config::input(io::edge::both)).make();
    const auto attr = fs::path("/sys/class/iocard") / name / "cos_chatter";
    const auto before = std::stoull(io::test::read_attr(attr));
    board_->fault(pci_board::fault_kind::chatter, 7);
    const bool counted = eventually([&] { return std::stoull(io::test::read_attr(attr)) > before; });
    board_->fault(pci_board::fault_kind::none);
    EXPECT_TRUE(counted) << "the chatter guard did not act";
    EXPECT_EQ(io::test::run("dmesg | grep -q 'line 7 changes more than 200 times a second'"), 0)
        << "and says so in the log";
}

TEST_F(pci, the_safe_state_is_applied_at_unplug) {
    const auto name = bind();
    {
        io::chip chip{io::find_card(name).gpiochip};
        auto out = chip.prepare_request().add(chip.find_port("OUT"), io::line_config::output()).make();
        out.write_port(chip.find_port("OUT"), 0xffff'0000U);
    }
    ASSERT_EQ(io::test::write_attr(fs::path("/sys/class/iocard") / name / "safe_state", "5,00000000"), 0);
    EXPECT_LT(board_->unplug(), 30.0);
    EXPECT_TRUE(board_bdf().empty());
    EXPECT_EQ(board_->out(), 0x5U) << "OUT0 and OUT2 on, the rest off, as the host saw last";
    board_->plug();
    const auto again = bind();
    io::chip chip{io::find_card(again).gpiochip};
    auto out = chip.prepare_request().add("OUT9", io::line_config::output(true)).make();
    EXPECT_EQ(board_->out() & 0x200U, 0x200U) << "plugged again, the board works";
}

/// Everything that can hold a line of the board while it is taken away:
/// libio waiting for an edge, libio holding an output, libgpiod 2's
/// gpiomon, and Debian 12's own gpiomon 1.6 (GPIO uAPI v1) when the suite
/// has it (LIBIO_GPIOD1, tests/vm/fetch-gpiod1).
struct users {
    explicit users(const std::string& card_name) {
        const auto card = io::find_card(card_name);
        chip = std::make_unique<io::chip>(card.gpiochip);
        in = std::make_unique<io::line_request>(
            chip->prepare_request().add("IN0", io::line_config::input(io::edge::both)).make());
        out = std::make_unique<io::line_request>(
            chip->prepare_request().add("OUT0", io::line_config::output()).make());
        waiter = std::thread{[this] {
            std::error_code ec;
            (void)in->wait_edge_events(60s, ec);
            wait_ec = ec;
            woken = true;
        }};
        mon2 = std::make_unique<io::test::tool_process>(
            std::vector<std::string>{"/usr/bin/gpiomon", "-c", card.gpiochip, "IN1"});
        const char* v1 = std::getenv("LIBIO_GPIOD1");
        EXPECT_NE(v1, nullptr) << "LIBIO_GPIOD1 unset: run the suite through tests/vm/fetch-gpiod1";
        if (v1 != nullptr) {
            const std::string dir = v1;
            mon1 = std::make_unique<io::test::tool_process>(std::vector<std::string>{
                "/usr/bin/env", "LD_LIBRARY_PATH=" + dir + "/usr/lib/x86_64-linux-gnu", dir + "/usr/bin/gpiomon",
                card.gpiochip, std::to_string(chip->find_line("IN2").value())});
        }
        // A line shows as requested before its interrupt is set up: wait
        // until each monitor sleeps in poll, its requests made.
        EXPECT_TRUE(eventually([&] { return mon2->waiting_in_poll(); })) << "gpiomon did not start waiting";
        EXPECT_TRUE(chip->info(chip->find_line("IN1").value()).used) << "gpiomon did not request IN1";
        if (mon1) {
            EXPECT_TRUE(eventually([&] { return mon1->waiting_in_poll(); })) << "gpiomon 1.6 did not start waiting";
            EXPECT_TRUE(chip->info(chip->find_line("IN2").value()).used) << "gpiomon 1.6 did not request IN2";
        }
    }

    /// After the board went: each was woken with an error, and lets go.
    void check_woken_and_release() {
        for (int i = 0; i < 200 && !woken; ++i)
            std::this_thread::sleep_for(50ms);
        EXPECT_TRUE(woken.load()) << "libio's waiter was not woken by the removal";
        waiter.join();  // not woken: its 60 s run out
        EXPECT_TRUE(io::is_device_removed(wait_ec)) << wait_ec.message();
        std::error_code ec;
        out->set(out->offsets()[0], true, ec);
        EXPECT_TRUE(io::is_device_removed(ec)) << "a held output fails once the board is gone: " << ec.message();
        const auto r2 = mon2->wait(10s);
        EXPECT_NE(r2.status, 128 + SIGKILL) << "gpiomon was not woken by the removal";
        EXPECT_NE(r2.status, 0) << "gpiomon ended without an error";
        if (mon1) {
            const auto r1 = mon1->wait(10s);
            EXPECT_NE(r1.status, 128 + SIGKILL) << "gpiomon 1.6 was not woken by the removal";
            EXPECT_NE(r1.status, 0);
        }
        in.reset();
        out.reset();
        chip.reset();
    }

    std::unique_ptr<io::chip> chip;
    std::unique_ptr<io::line_request> in, out;
    std::thread waiter;
    std::atomic<bool> woken{false};
    std::error_code wait_ec;
    std::unique_ptr<io::test::tool_process> mon2, mon1;
};

TEST_F(pci, hot_unplug_in_use_wakes_every_user_and_the_board_comes_back) {
    const auto refs = module_refcount();
    {
        users u{bind()};
        EXPECT_LT(board_->unplug(), 30.0);
        u.check_woken_and_release();
    }
    EXPECT_TRUE(eventually([&] { return module_refcount() == refs; })) << "module references left behind";
    board_->plug();
    const auto name = bind();
    io::chip chip{io::find_card(name).gpiochip};
    auto in = chip.prepare_request().add("IN4", io::line_config::input(io::edge::rising)).make();
    board_->in(0x10);
    EXPECT_TRUE(in.wait_edge_events(10s)) << "plugged again, edges flow";
    board_->in(0);
}

TEST_F(pci, removing_the_pci_device_in_use_is_safe) {
    const auto refs = module_refcount();
    std::string bdf;
    {
        users u{bind()};
        bdf = board_bdf();
        ASSERT_EQ(io::test::write_attr(pci_devices / bdf / "remove", "1"), 0);
        u.check_woken_and_release();
    }
    EXPECT_TRUE(eventually([&] { return module_refcount() == refs; })) << "module references left behind";
    ASSERT_EQ(io::test::write_attr("/sys/bus/pci/rescan", "1"), 0);
    const auto name = bind();
    EXPECT_EQ(io::find_card(name).model, "test-ivshmem-cos32");
}

TEST_F(pci, unbinding_in_use_is_safe_and_the_board_binds_again) {
    const auto refs = module_refcount();
    {
        users u{bind()};
        ASSERT_EQ(io::test::write_attr("/sys/bus/pci/drivers/iocard/unbind", board_bdf()), 0);
        u.check_woken_and_release();
    }
    EXPECT_TRUE(eventually([&] { return module_refcount() == refs; })) << "module references left behind";
    const auto name = bind();
    io::chip chip{io::find_card(name).gpiochip};
    auto out = chip.prepare_request().add("OUT1", io::line_config::output(true)).make();
    EXPECT_EQ(board_->out() & 0x2U, 0x2U);
}

TEST_F(pci, the_module_unloads_once_the_board_is_free) {
    (void)bind();
    EXPECT_TRUE(io::test::unload_iocard());
    EXPECT_EQ(driver_of(board_bdf()), "");
    EXPECT_TRUE(io::test::load_iocard("cos_max_rate=200"));
}

}  // namespace
