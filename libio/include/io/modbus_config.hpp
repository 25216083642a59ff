// SPDX-License-Identifier: MIT
#pragma once

#include <io/card.hpp>
#include <io/export.hpp>
#include <io/modbus.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace io {

/// One Modbus I/O module named in libio's configuration.
struct modbus_module_config {
    std::string name;          ///< what tools call it ("rack3-inputs")
    modbus_address address;    ///< its bus and unit; model empty: read with Get Config (0x45)
    std::chrono::milliseconds poll{100};  ///< poll period for presence and change of state
    std::string file;          ///< where it was configured: the file
    unsigned line = 0;         ///< and the line of its [NAME]

    friend bool operator==(const modbus_module_config&, const modbus_module_config&) = default;
};

/// libio's configuration directory: $LIBIO_CONFIG_DIR when set and not
/// empty (for tests and for trying a configuration out), else /etc/libio.
LIBIO_EXPORT std::filesystem::path config_dir();

/// Reads the modules of one configuration file's text (`file` names it in
/// errors). The format, one module per section:
///
///     # comment (also ; and after whitespace at the end of a line)
///     [rack3-inputs]
///     uri   = modbus-tcp://rack3.example:502?unit=1
///     model = 430      # optional: a model of modbus_models(), or auto (the default)
///     poll  = 100ms    # optional: 1ms to 1h as N, Nms or Ns (default 100ms)
///
/// NAME is 1 to 64 letters, digits, '.', '_' and '-', beginning with a
/// letter or digit and not with "modbus-" (tools take URIs there). The URI
/// (parse_modbus_uri()) must give the unit; a model given both in the URI
/// and by `model` must agree. Whitespace around keys and values is ignored.
/// \throws io::invalid_argument "FILE:LINE: what was wrong; what is allowed".
LIBIO_EXPORT std::vector<modbus_module_config> parse_modbus_config(std::string_view text, const std::string& file);

/// Reads every DIR/modbus.d/*.conf in name order (other names, such as
/// dpkg's .dpkg-old, are skipped). Names must be unique across the files,
/// and modules on one serial port must give the same line settings, timeout
/// and retries. No directory: no modules.
/// \throws io::invalid_argument as parse_modbus_config() does, or naming
///         both places of a clash; std::system_error for a file that exists
///         but cannot be read.
LIBIO_EXPORT std::vector<modbus_module_config> load_modbus_config(const std::filesystem::path& dir);
/// The same for config_dir().
LIBIO_EXPORT std::vector<modbus_module_config> load_modbus_config();

namespace detail {
struct modbus_site_state;
}

/// The configured modules, opened on demand: modules that share a bus (one
/// serial port, or one TCP host, port, timeout and retries) share one
/// modbus_bus. A module is open once its bus opened and its model is known
/// (given, or read from the module with Get Config); a module that cannot
/// be opened yet (its serial device absent, its unit silent while its model
/// must be read) is tried again by the next open(). An open module is named
/// by its configured name (info().name and info().label).
///
/// Move-only; used from one thread.
class LIBIO_EXPORT modbus_site final {
public:
    explicit modbus_site(std::vector<modbus_module_config> modules);
    ~modbus_site();
    modbus_site(modbus_site&&) noexcept;
    modbus_site& operator=(modbus_site&&) noexcept;
    modbus_site(const modbus_site&) = delete;
    modbus_site& operator=(const modbus_site&) = delete;

    std::size_t size() const noexcept;
    const modbus_module_config& config(std::size_t i) const;
    /// The index of the module called `name`.
    std::optional<std::size_t> find(std::string_view name) const;

    /// Module i, opened now if it is not open yet. Blocks while the bus is
    /// opened and, with model auto, while the module is asked for it.
    /// \throws what modbus_bus and modbus_module throw (std::system_error
    ///         with the errno or modbus_errc, io::invalid_argument).
    modbus_module& open(std::size_t i);
    /// The same without throwing: nullptr, and error() says why.
    modbus_module* try_open(std::size_t i) noexcept;
    /// Module i if it is open, else nullptr.
    modbus_module* module(std::size_t i) noexcept;
    /// Why the last open of module i failed ("" after a success).
    const std::string& error(std::size_t i) const;

    /// Module i as a card: its module's info() when open; before, what the
    /// configuration says (name, location = the URI, model "seaio-MODEL" or
    /// "" for auto, driver "modbus", cos "poll", no ports).
    card_info info(std::size_t i) const;

private:
    std::unique_ptr<detail::modbus_site_state> state_;
};

}  // namespace io
