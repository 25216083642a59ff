#!/bin/bash
# SPDX-License-Identifier: MIT
# Installs libio from the build tree into a scratch prefix, then builds and
# runs a program against it twice: with find_package(libio) and with pkg-config;
# then the same for a program that embeds the gateway component (libio-gate).
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/usr" --component Unspecified >/dev/null
lib=$(find "$tmp/usr" -name 'libio.so.1' -print -quit)
[ -n "$lib" ] || { echo "libio.so.1 not installed (soname)"; exit 1; }
# awk reads all of objdump's output: grep -q would stop at the match, and
# objdump, killed by SIGPIPE, would fail the pipeline (pipefail) now and then.
soname=$(objdump -p "$lib" | awk '$1 == "SONAME" { print $2 }')
[ "$soname" = libio.so.1 ] || { echo "wrong soname: '$soname'"; exit 1; }
libdir=$(dirname "$lib")

cmake -S "$src/tests/native/consumer" -B "$tmp/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/usr" >/dev/null
cmake --build "$tmp/cmake" >/dev/null
LD_LIBRARY_PATH=$libdir "$tmp/cmake/consumer"

export PKG_CONFIG_PATH=$libdir/pkgconfig
c++ -std=c++20 "$src/tests/native/consumer/main.cpp" -o "$tmp/pc-consumer" \
	$(pkg-config --define-prefix --cflags --libs libio)
LD_LIBRARY_PATH=$libdir "$tmp/pc-consumer"
echo "installed libio builds and runs with find_package and pkg-config"

[ -e "$libdir/libio_gate.a" ] || { echo "libio_gate.a not installed"; exit 1; }
cmake -S "$src/tests/native/gate_consumer" -B "$tmp/gate-cmake" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/usr" >/dev/null
cmake --build "$tmp/gate-cmake" >/dev/null
LD_LIBRARY_PATH=$libdir "$tmp/gate-cmake/gate_consumer"
c++ -std=c++20 "$src/tests/native/gate_consumer/main.cpp" -o "$tmp/pc-gate-consumer" \
	$(pkg-config --define-prefix --cflags --libs libio-gate)
LD_LIBRARY_PATH=$libdir "$tmp/pc-gate-consumer"
echo "installed libio-gate builds and runs with find_package and pkg-config"
