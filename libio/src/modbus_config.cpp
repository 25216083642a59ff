// SPDX-License-Identifier: MIT
#include <io/error.hpp>
#include <io/modbus_config.hpp>

#include "error.hpp"
#include "modbus_access.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <system_error>

namespace io {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t max_name = 64;
constexpr auto min_poll = 1ms;
constexpr auto max_poll = std::chrono::milliseconds(std::chrono::hours(1));
constexpr std::string_view default_dir = "/etc/libio";

[[noreturn]] void refuse(const std::string& file, unsigned line, const std::string& what) {
    throw io::invalid_argument(file + ":" + std::to_string(line) + ": " + what);
}

std::string_view trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t\r");
    if (first == std::string_view::npos)
        return {};
    const auto last = s.find_last_not_of(" \t\r");
    return s.substr(first, last - first + 1);
}

// The line without a comment: one that begins with # or ;, or a # or ;
// after whitespace.
std::string_view strip_comment(std::string_view line) {
    for (std::size_t i = 0; i < line.size(); ++i)
        if ((line[i] == '#' || line[i] == ';') && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t'))
            return line.substr(0, i);
    return line;
}

bool valid_name(std::string_view n) {
    if (n.empty() || n.size() > max_name || n.starts_with("modbus-"))
        return false;
    const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
    if (!alnum(n.front()))
        return false;
    return std::all_of(n.begin(), n.end(), [&](char c) { return alnum(c) || c == '.' || c == '_' || c == '-'; });
}

// "250", "250ms", "2s" within [min_poll, max_poll].
std::optional<std::chrono::milliseconds> parse_period(std::string_view v) {
    unsigned long n = 0;
    const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc{})
        return std::nullopt;
    const std::string_view unit = v.substr(static_cast<std::size_t>(p - v.data()));
    unsigned long ms = 0;
    if (unit.empty() || unit == "ms")
        ms = n;
    else if (unit == "s" && n <= static_cast<unsigned long>(max_poll.count()) / 1000)
        ms = n * 1000;
    else
        return std::nullopt;
    const std::chrono::milliseconds d(ms);
    if (ms > static_cast<unsigned long>(max_poll.count()) || d < min_poll)
        return std::nullopt;
    return d;
}

// The address without what belongs to one module: what makes buses equal.
modbus_address bus_of(modbus_address a) {
    a.unit = 0;
    a.model.clear();
    return a;
}

std::string place(const modbus_module_config& m) {
    return m.file + ":" + std::to_string(m.line);
}

}  // namespace

std::filesystem::path config_dir() {
    const char* env = std::getenv("LIBIO_CONFIG_DIR");
    return env != nullptr && *env != '\0' ? std::filesystem::path(env) : std::filesystem::path(default_dir);
}

std::vector<modbus_module_config> parse_modbus_config(std::string_view text, const std::string& file) {
    std::vector<modbus_module_config> out;
    // Per section: which keys it gave, and the model key's value.
    std::vector<std::string> keys;
    std::optional<std::string> model_key;
    unsigned model_line = 0;
    const auto finish = [&] {
        if (out.empty())
            return;
        auto& m = out.back();
        if (std::find(keys.begin(), keys.end(), "uri") == keys.end())
            refuse(file, m.line, "module '" + m.name + "' has no uri; add uri = modbus-rtu:DEVICE?unit=N or "
                                 "modbus-tcp://HOST[:PORT]?unit=N");
        if (model_key && *model_key != "auto") {
            if (!m.address.model.empty() && m.address.model != *model_key)
                refuse(file, model_line, "model " + *model_key + " differs from model=" + m.address.model +
                                             " in the uri; give the model once");
            m.address.model = *model_key;
        }
    };
    unsigned number = 0;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        const auto nl = text.find('\n', pos);
        const auto raw = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
        ++number;
        const auto line = trim(strip_comment(raw));
        if (line.empty())
            continue;
        if (line.front() == '[') {
            if (line.back() != ']')
                refuse(file, number, "section '" + std::string(line) + "' lacks its closing ']'; write [NAME]");
            const auto name = trim(line.substr(1, line.size() - 2));
            if (!valid_name(name))
                refuse(file, number, "module name '" + std::string(name) +
                                         "' is not valid; allowed 1 to 64 letters, digits, '.', '_' and '-', "
                                         "beginning with a letter or digit and not with 'modbus-'");
            for (const auto& m : out)
                if (m.name == name)
                    refuse(file, number, "module '" + std::string(name) + "' is configured twice (also at line " +
                                             std::to_string(m.line) + ")");
            finish();
            modbus_module_config m;
            m.name = std::string(name);
            m.file = file;
            m.line = number;
            out.push_back(std::move(m));
            keys.clear();
            model_key.reset();
            continue;
        }
        const auto eq = line.find('=');
        const auto key = trim(line.substr(0, eq));
        const bool word = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        });
        if (eq == std::string_view::npos || !word)
            refuse(file, number, "'" + std::string(line) + "' is neither [NAME] nor KEY = VALUE");
        const auto value = trim(line.substr(eq + 1));
        if (out.empty())
            refuse(file, number, "'" + std::string(key) + "' comes before any [NAME]; begin a module with [NAME]");
        if (std::find(keys.begin(), keys.end(), key) != keys.end())
            refuse(file, number, "'" + std::string(key) + "' is given twice for module '" + out.back().name + "'");
        auto& m = out.back();
        if (key == "uri") {
            try {
                m.address = parse_modbus_uri(value);
            } catch (const io::invalid_argument& e) {
                refuse(file, number, e.what());
            }
            if (m.address.unit == 0)
                refuse(file, number, "the uri of module '" + m.name + "' gives no unit; add unit=1..247");
        } else if (key == "model") {
            if (value != "auto") {
                try {
                    (void)find_modbus_model(value);
                } catch (const io::invalid_argument& e) {
                    refuse(file, number, std::string(e.what()) + ", or auto (read from the module)");
                }
            }
            model_key = std::string(value);
            model_line = number;
        } else if (key == "poll") {
            const auto p = parse_period(value);
            if (!p)
                refuse(file, number, "poll '" + std::string(value) + "' is not valid; allowed 1ms to 1h, as N (ms), "
                                                                     "Nms or Ns");
            m.poll = *p;
        } else {
            refuse(file, number, "unknown key '" + std::string(key) + "'; allowed uri, model, poll");
        }
        keys.emplace_back(key);
    }
    finish();
    return out;
}

std::vector<modbus_module_config> load_modbus_config(const std::filesystem::path& dir) {
    const auto d = dir / "modbus.d";
    std::error_code ec;
    if (!std::filesystem::is_directory(d, ec))
        return {};
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(d, ec))
        if (e.path().extension() == ".conf" && !e.path().filename().string().starts_with("."))
            files.push_back(e.path());
    if (ec)
        throw std::system_error(ec, "read " + d.string());
    std::sort(files.begin(), files.end());
    std::vector<modbus_module_config> all;
    for (const auto& f : files) {
        std::ifstream in{f};
        if (!in)
            detail::throw_errno(errno, "read " + f.string());
        std::ostringstream text;
        text << in.rdbuf();
        for (auto& m : parse_modbus_config(text.str(), f.string())) {
            for (const auto& o : all) {
                if (o.name == m.name)
                    throw io::invalid_argument(place(m) + ": module '" + m.name + "' is configured twice (also at " +
                                               place(o) + ")");
                if (m.address.transport == modbus_transport::rtu && o.address.transport == modbus_transport::rtu &&
                    m.address.device == o.address.device && bus_of(m.address) != bus_of(o.address))
                    throw io::invalid_argument(
                        place(m) + ": module '" + m.name + "' is on serial port " + m.address.device +
                        " with other settings than module '" + o.name + "' (" + place(o) +
                        "); modules on one port must give the same baud, parity, stop, mode, timeout and retries");
            }
            all.push_back(std::move(m));
        }
    }
    return all;
}

std::vector<modbus_module_config> load_modbus_config() {
    return load_modbus_config(config_dir());
}

namespace detail {

struct modbus_site_state {
    struct entry {
        modbus_module_config config;
        std::optional<modbus_module> module;
        std::string error;
    };
    std::vector<entry> entries;
    std::vector<std::pair<modbus_address, modbus_bus>> buses;

    modbus_bus& bus_for(const modbus_address& a) {
        const auto key = bus_of(a);
        for (auto& [k, b] : buses)
            if (k == key)
                return b;
        return buses.emplace_back(key, modbus_bus(key)).second;
    }
};

}  // namespace detail

modbus_site::modbus_site(std::vector<modbus_module_config> modules)
    : state_{std::make_unique<detail::modbus_site_state>()} {
    for (auto& m : modules)
        state_->entries.push_back({std::move(m), std::nullopt, {}});
}
modbus_site::~modbus_site() = default;
modbus_site::modbus_site(modbus_site&&) noexcept = default;
modbus_site& modbus_site::operator=(modbus_site&&) noexcept = default;

namespace {
detail::modbus_site_state& usable(const std::unique_ptr<detail::modbus_site_state>& s) {
    if (!s)
        throw usage_error("modbus_site: used after being moved from");
    return *s;
}
}  // namespace

std::size_t modbus_site::size() const noexcept {
    return state_ ? state_->entries.size() : 0;
}

const modbus_module_config& modbus_site::config(std::size_t i) const {
    return usable(state_).entries.at(i).config;
}

std::optional<std::size_t> modbus_site::find(std::string_view name) const {
    const auto& e = usable(state_).entries;
    for (std::size_t i = 0; i < e.size(); ++i)
        if (e[i].config.name == name)
            return i;
    return std::nullopt;
}

modbus_module& modbus_site::open(std::size_t i) {
    auto& s = usable(state_);
    auto& e = s.entries.at(i);
    if (e.module)
        return *e.module;
    try {
        auto& bus = s.bus_for(e.config.address);
        modbus_module m = e.config.address.model.empty() ? modbus_module(bus, e.config.address.unit)
                                                         : modbus_module(bus, e.config.address.unit, e.config.address.model);
        detail::modbus_access::set_name(m, e.config.name);
        e.module.emplace(std::move(m));
        e.error.clear();
    } catch (const std::exception& x) {
        e.error = x.what();
        throw;
    }
    return *e.module;
}

modbus_module* modbus_site::try_open(std::size_t i) noexcept {
    try {
        return &open(i);
    } catch (...) {
        return nullptr;
    }
}

modbus_module* modbus_site::module(std::size_t i) noexcept {
    if (!state_ || i >= state_->entries.size() || !state_->entries[i].module)
        return nullptr;
    return &*state_->entries[i].module;
}

const std::string& modbus_site::error(std::size_t i) const {
    return usable(state_).entries.at(i).error;
}

card_info modbus_site::info(std::size_t i) const {
    const auto& e = usable(state_).entries.at(i);
    if (e.module)
        return e.module->info();
    card_info c;
    c.name = e.config.name;
    c.label = e.config.name;
    c.location = to_string(e.config.address);
    c.model = e.config.address.model.empty() ? "" : "seaio-" + e.config.address.model;
    if (!e.config.address.model.empty())
        c.vendor = std::string(find_modbus_model(e.config.address.model).vendor);
    c.driver = "modbus";
    c.cos = "poll";
    return c;
}

}  // namespace io
