// SPDX-License-Identifier: MIT
#include "error.hpp"

#include <io/error.hpp>

#include <cerrno>
#include <system_error>

namespace io::tools {

void usage_failure(const std::string& what) {
    throw tool_error(exit_usage, what);
}

void not_found(const std::string& what) {
    throw tool_error(exit_not_found, what);
}

namespace {

exit_code code_of(const std::error_code& ec, const std::string& what) {
    if (ec.category() != std::system_category() && ec.category() != std::generic_category())
        return exit_io;
    switch (ec.value()) {
    case ENOENT:
        return exit_not_found;
    case ENOTTY:  // opening something that is not a tty, or an ioctl the driver lacks
        return what.find("not a serial port") != std::string::npos ? exit_not_found : exit_usage;
    case EINVAL:      // a rate or configuration the device refuses
    case EOPNOTSUPP:  // a mode the driver lacks
        return exit_usage;
    case EACCES:
    case EPERM:
        return exit_permission;
    default:
        return exit_io;
    }
}

}  // namespace

classified classify(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const tool_error& x) {
        return {x.code(), x.what()};
    } catch (const std::system_error& x) {
        std::string msg = x.what();
        const auto code = code_of(x.code(), msg);
        if (code == exit_permission)
            msg += " (members of group iocard may use the cards; see iotool(1), PERMISSIONS)";
        return {code, msg};
    } catch (const std::invalid_argument& x) {  // io::invalid_argument too
        return {exit_usage, x.what()};
    } catch (const std::logic_error& x) {  // io::usage_error: a bug of the tool
        return {exit_io, std::string("internal error: ") + x.what()};
    } catch (const std::bad_alloc&) {
        return {exit_io, "out of memory"};
    } catch (const std::exception& x) {
        return {exit_io, x.what()};
    }
}

}  // namespace io::tools
