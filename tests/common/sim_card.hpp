// SPDX-License-Identifier: MIT
// Virtual cards of iocard.ko for tests in the VM:
//   io::test::sim_card card{"dio120"};   // a fresh virtual card
//   io::chip chip{card.chip_path()};
// The module built for the running kernel is loaded on first use.
#pragma once

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <cstdio>
#include <sys/stat.h>
#include <sys/wait.h>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace io::test {

/// Reads a sysfs attribute, without the trailing newline.
inline std::string read_attr(const std::filesystem::path& p) {
    std::ifstream f{p};
    if (!f)
        throw std::runtime_error("cannot read " + p.string());
    std::string s;
    std::getline(f, s);
    return s;
}

/// Writes a sysfs attribute; returns 0 or the errno the kernel answered.
inline int write_attr(const std::filesystem::path& p, const std::string& value) {
    const int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    const auto n = ::write(fd, value.data(), value.size());
    const int err = n < 0 ? errno : 0;
    ::close(fd);
    return err;
}

/// Runs a shell command; returns its exit status.
inline int run(const std::string& cmd) {
    const int st = std::system(cmd.c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/// Where iocard.ko for the running kernel was built (LIBIO_KMOD_DIR/<series>).
inline std::string iocard_ko() {
    const char* dir = std::getenv("LIBIO_KMOD_DIR");
    const char* series = std::getenv("LIBIO_VM_SERIES");
    if (dir == nullptr || series == nullptr)
        throw std::runtime_error("LIBIO_KMOD_DIR and LIBIO_VM_SERIES must be set (tests/vm/vm.py sets the latter)");
    return std::string(dir) + "/" + series + "/iocard.ko";
}

inline bool iocard_loaded() {
    return std::filesystem::exists("/sys/module/iocard");
}

/// Loads iocard.ko with the given parameters; false if insmod refused.
inline bool load_iocard(const std::string& params = "") {
    return run("insmod " + iocard_ko() + " " + params + " 2>/dev/null") == 0;
}

inline bool unload_iocard() {
    return run("rmmod iocard 2>/dev/null") == 0;
}

/// A virtual card that lives as long as the object.
class sim_card final {
public:
    explicit sim_card(const std::string& model) {
        if (!iocard_loaded() && !load_iocard())
            throw std::runtime_error("insmod " + iocard_ko() + " failed");
        static int next_id = 100;
        id_ = next_id++;
        name_ = "iocard" + std::to_string(id_);
        if (const int err = write_attr("/sys/class/iocard/new_sim", model + " " + std::to_string(id_)))
            throw std::system_error(err, std::system_category(), "create virtual card " + model);
        chip_ = "/dev/" + read_attr(sys() / "gpiochip");
        // devtmpfs makes the node with the device; wait for it to be usable.
        for (int i = 0; i < 200 && ::access(chip_.c_str(), R_OK | W_OK) != 0; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds{5});
        // And for udev to have recorded the chip: libio lists a card once
        // udev's record of its gpiochip is the card's own (a gpiochip number
        // used before keeps the previous card's record until then).
        if (run("udevadm settle --timeout=30") != 0)
            throw std::runtime_error("udev did not settle after creating " + name_);
    }
    ~sim_card() { remove(); }
    sim_card(const sim_card&) = delete;
    sim_card& operator=(const sim_card&) = delete;

    const std::string& name() const noexcept { return name_; }
    std::filesystem::path sys() const { return "/sys/class/iocard/" + name_; }
    const std::string& chip_path() const noexcept { return chip_; }
    bool present() const { return std::filesystem::exists(sys()); }

    /// Levels applied to the inputs from outside, as a hex mask by line offset.
    void set_inputs(const std::string& hex) {
        if (const int err = write_attr(sys() / "sim_inputs", hex))
            throw std::system_error(err, std::system_category(), "write sim_inputs " + hex);
    }
    std::string outputs() const { return read_attr(sys() / "sim_outputs"); }
    void loopback(bool on) {
        if (const int err = write_attr(sys() / "sim_loopback", on ? "1" : "0"))
            throw std::system_error(err, std::system_category(), "write sim_loopback");
    }

    /// The card's chatter guard (cos_max_rate, cards with cos "hw"): changes
    /// per second of one line, 0 for none.
    void cos_max_rate(unsigned rate) {
        if (const int err = write_attr(sys() / "cos_max_rate", std::to_string(rate)))
            throw std::system_error(err, std::system_category(), "write cos_max_rate");
    }

    /// Deletes the card now; returns the errno the kernel answered (0: gone).
    int remove() {
        if (!present())
            return 0;
        return write_attr("/sys/class/iocard/delete_sim", name_);
    }

private:
    int id_ = 0;
    std::string name_;
    std::string chip_;
};

/// A hex mask (sysfs bitmap format) parsed into an integer, for up to 64 lines.
inline unsigned long long parse_mask(std::string s) {
    std::string digits;
    for (char c : s)
        if (c != ',')
            digits += c;
    return std::stoull(digits, nullptr, 16);
}

}  // namespace io::test
