// SPDX-License-Identifier: MIT
// The raw libmodbus client of the Modbus benchmarks: the baseline that
// libio's client and iogate's server are measured against.
#pragma once

#include <benchmark/benchmark.h>
#include <modbus.h>

#include <memory>

namespace bench {

using modbus_ptr = std::unique_ptr<modbus_t, void (*)(modbus_t*)>;

/// ctx (from modbus_new_tcp or modbus_new_rtu) connected, or opened, and
/// talking to unit 1 with a 2 s response timeout; null, with the case
/// skipped with `failed`, when ctx is null or cannot connect.
inline modbus_ptr raw_modbus_client(benchmark::State& state, modbus_t* ctx, const char* failed) {
    modbus_ptr client{ctx, [](modbus_t* c) {
                          modbus_close(c);
                          modbus_free(c);
                      }};
    if (!client || modbus_connect(client.get()) != 0) {
        state.SkipWithError(failed);
        client.reset();
        return client;
    }
    modbus_set_slave(client.get(), 1);
    modbus_set_response_timeout(client.get(), 2, 0);
    return client;
}

}  // namespace bench
