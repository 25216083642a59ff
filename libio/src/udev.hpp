// SPDX-License-Identifier: MIT
// Small owners for libudev objects, shared by discovery and the monitor.
#pragma once

#include <libudev.h>

#include <memory>
#include <string>

namespace io::detail {

struct udev_release {
    void operator()(udev* p) const noexcept { ::udev_unref(p); }
    void operator()(udev_device* p) const noexcept { udev_device_unref(p); }
    void operator()(udev_enumerate* p) const noexcept { udev_enumerate_unref(p); }
    void operator()(udev_monitor* p) const noexcept { udev_monitor_unref(p); }
    void operator()(udev_hwdb* p) const noexcept { udev_hwdb_unref(p); }
};
template <typename T>
using udev_owner = std::unique_ptr<T, udev_release>;

/// A udev context; throws std::system_error when there is none.
udev_owner<udev> make_udev();

/// A property or sysfs attribute as a string, "" when absent.
inline std::string prop(udev_device* d, const char* name) {
    const char* v = udev_device_get_property_value(d, name);
    return v != nullptr ? v : "";
}
inline std::string attr(udev_device* d, const char* name) {
    const char* v = udev_device_get_sysattr_value(d, name);
    return v != nullptr ? v : "";
}

}  // namespace io::detail
