// SPDX-License-Identifier: MIT
#pragma once

/// Marks a symbol as part of libio's ABI; everything else is hidden.
#if defined(LIBIO_BUILDING)
#define LIBIO_EXPORT __attribute__((visibility("default")))
#else
#define LIBIO_EXPORT
#endif
