#!/bin/sh
# SPDX-License-Identifier: MIT
# Install every build and test dependency of libio from Debian's packages.
# The list lives in one place, debian/control's Build-Depends; this script
# makes it installable: on Debian 12 it enables bookworm-backports (on the
# mirror the machine already uses) and takes libgpiod 2 from there.
#
#   deps.sh               apt-get update, then install what is missing
#   deps.sh --if-missing  the same, only when a Build-Depends is unmet (quick
#                         and needs no root when everything is there)
set -eu
cd "$(dirname "$0")/.."

if [ "${1:-}" = --if-missing ]; then
	shift
	# Build profiles are off: the test dependencies count too.
	if dpkg-checkbuilddeps debian/control 2>/dev/null; then
		exit 0
	fi
	echo "deps: Build-Depends not all installed; installing them (debian/deps.sh)" >&2
fi

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null; then
		exec sudo "$0" "$@"
	fi
	echo "deps: installing packages needs root (or sudo)" >&2
	exit 1
fi
. /etc/os-release
export DEBIAN_FRONTEND=noninteractive

# The URI (and key) of the machine's own source for SUITE main.
mirror_of() { debian/mirror-of "$1"; }

if [ "${VERSION_CODENAME:-}" = bookworm ]; then
	line=$(mirror_of bookworm | grep -v -- '-security' | head -n1)
	if [ -z "$line" ]; then
		echo "deps: no apt source for bookworm main found to derive bookworm-backports from" >&2
		exit 1
	fi
	uri=$(printf '%s' "$line" | cut -f1)
	key=$(printf '%s' "$line" | cut -f2)
	src=/etc/apt/sources.list.d/libio-bookworm-backports.sources
	want=$(printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\n' "$uri"
	       [ -n "$key" ] && printf 'Signed-By: %s\n' "$key")
	if ! mirror_of bookworm-backports | grep -q . || [ -e "$src" ]; then
		[ "$(cat "$src" 2>/dev/null)" = "$want" ] || printf '%s\n' "$want" > "$src"
	fi
	pin=/etc/apt/preferences.d/libio-libgpiod
	want='Package: libgpiod* libgpiodcxx* gpiod python3-libgpiod
Pin: release n=bookworm-backports
Pin-Priority: 500'
	[ "$(cat "$pin" 2>/dev/null)" = "$want" ] || printf '%s\n' "$want" > "$pin"
fi

apt-get update -q -o Acquire::Retries=5 >/dev/null
apt-get build-dep -y -q -o Acquire::Retries=5 --no-install-recommends ./
