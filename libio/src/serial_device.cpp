// SPDX-License-Identifier: MIT
#include "serial_device.hpp"

#include "files.hpp"
#include "sys.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace io::detail {
namespace {

std::string describe(const std::set<long>& pids) {
    std::string out;
    for (const long pid : pids) {
        if (!out.empty())
            out += ", ";
        out += "pid " + std::to_string(pid);
        const auto comm = first_line(fs::path("/proc") / std::to_string(pid) / "comm");
        if (!comm.empty())
            out += " (" + comm + ")";
    }
    return out;
}

bool is_pid(const std::string& s) {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

std::string tty_name(const fs::path& dev) {
    std::error_code ec;
    const auto real = fs::canonical(dev, ec);
    if (ec)
        return {};
    const auto name = real.filename().string();
    return fs::exists(fs::path("/sys/class/tty") / name, ec) ? name : std::string{};
}

std::string tty_driver(const std::string& name, dev_t rdev) {
    std::error_code ec;
    if (!name.empty()) {
        auto dev = fs::canonical(fs::path("/sys/class/tty") / name / "device", ec);
        for (int up = 0; !ec && up < 4 && dev.has_relative_path(); ++up, dev = dev.parent_path()) {
            const auto drv = fs::canonical(dev / "driver", ec);
            if (ec) {
                ec.clear();
                continue;
            }
            const auto d = drv.filename().string();
            if (d != "port" && d != "ctrl")
                return d;
        }
    }
    // /proc/tty/drivers: "name /dev/prefix major minor-range type".
    std::ifstream f{"/proc/tty/drivers"};
    std::string line;
    while (std::getline(f, line)) {
        std::istringstream in{line};
        std::string drv, node, minors;
        unsigned maj = 0;
        if (!(in >> drv >> node >> maj >> minors) || maj != major(rdev))
            continue;
        unsigned lo = 0, hi = 0;
        const int n = std::sscanf(minors.c_str(), "%u-%u", &lo, &hi);
        if (n == 1)
            hi = lo;
        if (n >= 1 && minor(rdev) >= lo && minor(rdev) <= hi)
            return drv.rfind("pty", 0) == 0 ? std::string{"pty"} : drv;
    }
    return "unknown";
}

std::string lock_holders(dev_t dev, ino_t ino) {
    // "1: FLOCK  ADVISORY  WRITE 1234 00:05:1045 0 EOF"; waiters read "1: -> FLOCK ...".
    std::ifstream f{"/proc/locks"};
    std::string line;
    std::set<long> pids;
    while (std::getline(f, line)) {
        std::istringstream in{line};
        std::string num, type, kind, mode, id;
        long pid = 0;
        if (!(in >> num >> type) || type != "FLOCK" || !(in >> kind >> mode >> pid >> id))
            continue;
        unsigned maj = 0, min = 0;
        unsigned long inode = 0;
        if (std::sscanf(id.c_str(), "%x:%x:%lu", &maj, &min, &inode) == 3 && maj == major(dev) &&
            min == minor(dev) && inode == ino && pid > 0)
            pids.insert(pid);
    }
    return describe(pids);
}

std::string open_holders(dev_t rdev) {
    std::set<long> pids;
    std::error_code ec;
    for (const auto& proc : fs::directory_iterator("/proc", ec)) {
        const auto pid = proc.path().filename().string();
        if (!is_pid(pid))
            continue;
        std::error_code fec;
        for (const auto& fd : fs::directory_iterator(proc.path() / "fd", fec)) {
            struct stat st {};
            if (::stat(fd.path().c_str(), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == rdev) {
                pids.insert(std::stol(pid));
                break;
            }
        }
    }
    return describe(pids);
}

std::optional<fs::path> tty_attribute(const std::string& name, const char* attribute) {
    if (name.empty())
        return std::nullopt;
    const auto p = fs::path("/sys/class/tty") / name / "device" / attribute;
    std::error_code ec;
    if (!fs::exists(p, ec))
        return std::nullopt;
    return p;
}

long read_attribute(const fs::path& p) {
    const int fd = retry_eintr([&] { return sys().open(p.c_str(), O_RDONLY | O_CLOEXEC, 0); });
    if (fd < 0)
        return -1;
    char buf[32] = {};
    const auto n = retry_eintr([&] { return sys().read(fd, buf, sizeof buf - 1); });
    const int err = errno;
    sys().close(fd);
    if (n <= 0) {
        errno = n < 0 ? err : EIO;
        return -1;
    }
    char* end = nullptr;
    const long v = std::strtol(buf, &end, 10);
    if (end == buf) {
        errno = EINVAL;
        return -1;
    }
    return v;
}

bool write_attribute(const fs::path& p, long value) {
    const int fd = retry_eintr([&] { return sys().open(p.c_str(), O_WRONLY | O_CLOEXEC, 0); });
    if (fd < 0)
        return false;
    const auto text = std::to_string(value);
    const auto n = retry_eintr([&] { return sys().write(fd, text.data(), text.size()); });
    const int err = errno;
    sys().close(fd);
    if (n != static_cast<ssize_t>(text.size())) {
        errno = n < 0 ? err : EIO;
        return false;
    }
    return true;
}

}  // namespace io::detail
