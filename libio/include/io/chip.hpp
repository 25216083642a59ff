// SPDX-License-Identifier: MIT
#pragma once

#include <io/export.hpp>
#include <io/line_config.hpp>
#include <io/line_request.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace io {

/// What the kernel says about one line of a chip.
struct line_info {
    unsigned offset;
    std::string name;       ///< empty when the driver names no lines
    std::string consumer;   ///< who holds it; empty when free
    bool used;              ///< requested by someone (or reserved by the kernel)
    direction dir;
    edge edges;
    bool active_low;
};

/// A group of lines read or written as one integer: the lines named NAME0,
/// NAME1, ... on the chip (for example A0..A7, or CH4..CH7), bit i of the
/// integer being the line whose name ends in the i-th lowest number.
struct port {
    std::string name;
    std::vector<unsigned> lines;  ///< offsets, in bit order
};

/// Splits a line name into its port and number, as ports are formed:
/// "CH7" gives ("CH", 7), "P1A12" ("P1A", 12); nullopt when the name ends
/// in no number (or one too large for unsigned), like "RESET" or "".
LIBIO_EXPORT std::optional<std::pair<std::string, unsigned>> split_line_name(std::string_view name);

class chip;

/// Collects the lines of a request; chip::prepare_request() makes one.
class LIBIO_EXPORT request_builder final {
public:
    /// Names the request's owner, as gpioinfo shows it. Default "libio".
    request_builder& consumer(std::string_view name);
    /// Adds a line by offset.
    request_builder& add(unsigned offset, const line_config& config);
    /// Adds a line by name ("A0", "IN3"); throws io::invalid_argument if the
    /// chip has no line of that name (the message lists the names it has).
    request_builder& add(std::string_view name, const line_config& config);
    /// Adds every line of a port.
    request_builder& add(const port& p, const line_config& config);
    /// Size of the kernel's edge event queue, in events (default: the
    /// kernel's, 16 per line).
    request_builder& event_buffer_size(std::size_t events);

    /// Requests the lines from the kernel. Throws std::system_error (EBUSY:
    /// a line is held by another consumer, named in the message; EINVAL or
    /// EPERM: the card refuses the configuration, e.g. an output on an input
    /// line) or io::invalid_argument (no lines, more than 64, a line twice).
    line_request make();

private:
    friend class chip;
    explicit request_builder(const chip& c) : chip_{&c} {}
    struct entry {
        unsigned offset;
        line_config config;
    };
    const chip* chip_;
    std::string consumer_ = "libio";
    std::vector<entry> lines_;
    std::size_t event_buffer_size_ = 0;
};

/// An open gpiochip character device (/dev/gpiochipN). Move-only.
class LIBIO_EXPORT chip final {
public:
    /// Opens the chip; throws std::system_error naming the path.
    explicit chip(const std::string& path);
    ~chip();
    chip(chip&&) noexcept;
    chip& operator=(chip&&) noexcept;
    chip(const chip&) = delete;
    chip& operator=(const chip&) = delete;

    const std::string& path() const noexcept { return path_; }
    std::string name() const;   ///< "gpiochip3"
    std::string label() const;  ///< the driver's label, e.g. "iocard0"
    unsigned num_lines() const;
    line_info info(unsigned offset) const;
    /// The offset of the line with that name, if the chip has one.
    std::optional<unsigned> find_line(std::string_view name) const;
    /// The chip's ports, from its line names (see io::port), by name.
    std::vector<port> ports() const;
    /// The port of that name; throws io::invalid_argument listing the ports.
    port find_port(std::string_view name) const;

    request_builder prepare_request() const { return request_builder{*this}; }

    /// The chip's file descriptor (readable when line info changes are watched).
    int fd() const noexcept;

private:
    friend class request_builder;
    struct impl;
    std::string path_;
    std::unique_ptr<impl> impl_;
};

}  // namespace io
