// SPDX-License-Identifier: MIT
// The serial port on an event loop: data arriving, modem lines changing.
#include <io/error.hpp>
#include <io/serial_port.hpp>

#include "error.hpp"
#include "event_loop_access.hpp"

#include <cerrno>
#include <memory>

namespace io {

registration on_serial_data(event_loop& loop, serial_port& port, std::function<void(std::error_code)> cb) {
    if (!cb)
        throw invalid_argument("on_serial_data: the callback is empty");
    return loop.watch(port.fd(), ready::in, [&loop, cb = std::move(cb)](readiness r) {
        if (r.hangup()) {  // a tty hangs up when its device goes away
            detail::event_loop_access::unwatch_current(loop);
            cb(detail::errno_code(ENODEV));
            return;
        }
        cb({});
    });
}

registration on_modem_change(event_loop& loop, serial_port& port, std::chrono::milliseconds period,
                             std::function<void(const modem_lines&, std::error_code)> cb) {
    if (!cb)
        throw invalid_argument("on_modem_change: the callback is empty");
    if (period.count() <= 0)
        throw invalid_argument("on_modem_change: the sampling period must be positive");
    struct state {
        modem_lines last;
        bool failed = false;
    };
    auto st = std::make_shared<state>();
    st->last = port.modem();
    return loop.call_every(period, [&port, st, cb = std::move(cb)] {
        if (st->failed)
            return;
        try {
            const auto now = port.modem();
            if (!(now == st->last)) {
                st->last = now;
                cb(now, {});
            }
        } catch (const std::system_error& e) {
            st->failed = true;
            cb(st->last, e.code());
        }
    });
}

}  // namespace io
