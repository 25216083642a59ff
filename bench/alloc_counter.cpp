// SPDX-License-Identifier: MIT
// Counts the process's heap allocations by interposing malloc, calloc and
// realloc (the executable's definitions win over glibc's for every library,
// libstdc++'s operator new and libgpiod included). Not built with sanitizers,
// which interpose malloc themselves.
#include "bench_common.hpp"

#include <atomic>
#include <cstddef>

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
}

namespace {
std::atomic<std::uint64_t> count{0};
}

std::uint64_t bench::allocations() noexcept {
    return count.load(std::memory_order_relaxed);
}

extern "C" {

void* malloc(std::size_t n) {
    count.fetch_add(1, std::memory_order_relaxed);
    return __libc_malloc(n);
}

void* calloc(std::size_t k, std::size_t n) {
    count.fetch_add(1, std::memory_order_relaxed);
    return __libc_calloc(k, n);
}

void* realloc(void* p, std::size_t n) {
    count.fetch_add(1, std::memory_order_relaxed);
    return __libc_realloc(p, n);
}

}  // extern "C"
