#!/bin/sh
# SPDX-License-Identifier: MIT
# Install every build and test dependency of libio from Debian's packages.
# The list lives in one place, debian/control's Build-Depends; this script
# makes it installable: on Debian 12 it enables bookworm-backports (on the
# mirror the machine already uses) and takes libgpiod 2 from there.
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null; then
		exec sudo "$0" "$@"
	fi
	echo "deps: installing packages needs root (or sudo)" >&2
	exit 1
fi
. /etc/os-release
export DEBIAN_FRONTEND=noninteractive

# The URI (and key) of the machine's own source for SUITE main, deb822 or one-line.
mirror_of() {
	suite=$1
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -e "$f" ] || continue
		awk -v suite="$suite" '
			function flush() {
				if (uri != "" && (" " suites " ") ~ (" " suite " ") && comps ~ /(^| )main( |$)/ && types ~ /(^| )deb( |$)/)
					print uri "\t" key
				uri = ""; suites = ""; comps = ""; key = ""; types = ""
			}
			/^[ \t]*$/ { flush(); next }
			/^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
			/^URIs:/ { uri = $2 }
			/^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
			/^Components:/ { sub(/^Components:[ \t]*/, ""); comps = $0 }
			/^Signed-By:/ { key = $2 }
			END { flush() }' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -e "$f" ] || continue
		awk -v suite="$suite" '
			$1 == "deb" {
				key = ""; i = 2
				if ($2 ~ /^\[/) {
					for (; i <= NF; i++) {
						if ($i ~ /signed-by=/) { key = $i; sub(/.*signed-by=/, "", key); sub(/\]$/, "", key) }
						if ($i ~ /\]$/) { i++; break }
					}
				}
				if ($(i + 1) == suite) for (j = i + 2; j <= NF; j++) if ($j == "main") print $i "\t" key
			}' "$f"
	done
}

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

apt-get update -q >/dev/null
apt-get build-dep -y -q --no-install-recommends ./
