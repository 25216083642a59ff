// SPDX-License-Identifier: MIT
// The iocard PCI test board's far end: its host model (tests/vm/pciboard.py,
// booted with vm.py run --pci-board msix|intx), driven through the cable
// agent's `board` orders. The board is QEMU's ivshmem-doorbell (PCI
// 1af4:1110) behind PCIe root port rp0; the register layout is in pciboard.py.
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cable.hpp"

namespace io::test {

/// Orders to the board's model. Every call waits for the model's answer and
/// throws std::runtime_error when it is "err ...".
class pci_board final {
public:
    static constexpr std::uint16_t vendor_id = 0x1af4;
    static constexpr std::uint16_t device_id = 0x1110;

    enum class irq_mode { msix, intx };
    enum class fault_kind { none, gone, chatter, spurious };

    struct hello_info {
        unsigned peer;  ///< the guest's ivshmem peer ID (IVPosition), 0 before it connected
        irq_mode irq;
        bool present;  ///< plugged and connected to the model
    };

    struct counts_info {
        std::uint64_t doorbells;  ///< doorbells the guest rang (peer 0, vector 0)
        std::uint64_t irqs;       ///< interrupts the model raised
    };

    /// Uses the test's cable (the agent's port opens once).
    explicit pci_board(cable& c) noexcept : cable_{c} {}

    hello_info hello() {
        const auto w = ok("board hello", 3);
        return {static_cast<unsigned>(std::stoul(w[0])), w[1] == "intx" ? irq_mode::intx : irq_mode::msix,
                w[2] == "present"};
    }

    /// Sets the inputs (bit n = IN n): each changed bit counts once in its CHG
    /// word, and one interrupt is raised when a changed bit is enabled. Returns
    /// the changed bits.
    std::uint32_t in(std::uint32_t levels) { return hex(ok("board in " + to_hex(levels), 1)[0]); }

    /// n pulses on IN line: 2n changes, an interrupt for each when the line is
    /// enabled, each taken by QEMU and pace_us apart. Returns the interrupts
    /// raised. A pace is no handshake (under TCG 200 us lost edges, 2 ms did
    /// not): a test that must see every edge changes one line with in() and
    /// waits for its event before the next.
    unsigned pulse(unsigned line, unsigned n, unsigned pace_us = 2000) {
        return static_cast<unsigned>(std::stoul(
            ok("board pulse " + std::to_string(line) + " " + std::to_string(n) + " " + std::to_string(pace_us), 1)[0]));
    }

    /// OUT as the guest last wrote it (also after the board was unplugged).
    std::uint32_t out() { return hex(ok("board out", 1)[0]); }
    std::uint32_t en() { return hex(ok("board en", 1)[0]); }
    std::uint32_t wseq() { return static_cast<std::uint32_t>(std::stoul(ok("board wseq", 1)[0])); }

    /// Doorbells and interrupts since the model started (take differences).
    counts_info counts() {
        const auto w = ok("board counts", 2);
        return {std::stoull(value_of(w[0], "doorbells=")), std::stoull(value_of(w[1], "irqs="))};
    }

    /// gone: the shared memory reads all-ones; chatter: IN arg toggles every
    /// ~100 us; spurious: arg interrupts without a change; none: ends them all
    /// and restores the memory from before gone.
    void fault(fault_kind kind, unsigned arg = 0) {
        switch (kind) {
            case fault_kind::none:
                ok("board fault none", 0);
                break;
            case fault_kind::gone:
                ok("board fault gone", 0);
                break;
            case fault_kind::chatter:
                ok("board fault chatter " + std::to_string(arg), 0);
                break;
            case fault_kind::spurious:
                ok("board fault spurious " + std::to_string(arg), 0);
                break;
        }
    }

    /// QMP device_del of the board, returning once QEMU reported it deleted
    /// (the guest ejected it): the seconds that took.
    double unplug() { return std::stod(ok("board unplug", 1)[0]); }

    /// device_add of the board as at boot; the guest still has to find it
    /// (hotplug). Returns its new peer ID.
    unsigned plug() { return static_cast<unsigned>(std::stoul(ok("board plug", 1)[0])); }

private:
    /// The words after "ok", at least n of them.
    std::vector<std::string> ok(const std::string& order, std::size_t n) {
        const auto a = cable_.order(order);
        std::istringstream s{a};
        std::string word;
        s >> word;
        std::vector<std::string> words;
        for (std::string w; s >> w;) words.push_back(w);
        if (word != "ok" || words.size() < n) throw std::runtime_error(order + ": " + a);
        return words;
    }

    static std::string to_hex(std::uint32_t v) {
        std::ostringstream s;
        s << "0x" << std::hex << v;
        return s.str();
    }

    static std::uint32_t hex(const std::string& s) { return static_cast<std::uint32_t>(std::stoul(s, nullptr, 16)); }

    static std::string value_of(const std::string& word, std::string_view key) {
        if (word.rfind(key, 0) != 0) throw std::runtime_error("board counts: no " + std::string(key) + " in " + word);
        return word.substr(key.size());
    }

    cable& cable_;
};

}  // namespace io::test
