// SPDX-License-Identifier: MIT
// An edge event as the GPIO uAPI v2 hands it out on read(), for fake kernels
// behind the system-call seam.
#pragma once

#include <linux/gpio.h>

#include <cstdint>

namespace io::test {

inline gpio_v2_line_event edge_record(unsigned offset, bool rising, std::uint64_t timestamp_ns, unsigned seqno,
                                      unsigned line_seqno) {
    gpio_v2_line_event e{};
    e.offset = offset;
    e.id = rising ? GPIO_V2_LINE_EVENT_RISING_EDGE : GPIO_V2_LINE_EVENT_FALLING_EDGE;
    e.timestamp_ns = timestamp_ns;
    e.seqno = seqno;
    e.line_seqno = line_seqno;
    return e;
}

}  // namespace io::test
