#!/usr/bin/env bash
# Builds librdkafka's own regression suite (tests/test-runner) from the
# Debian source package, once, into a cache directory, and prints the path
# of its tests/ directory.
#
# The source comes from `apt-get source` run with a private apt
# configuration in a temporary directory: the deb-src entry lives there and
# never in the machine's own sources. The build dependencies are Debian's
# own for the package (so SSL, SASL, zstd, lz4 and RapidJSON tests build as
# they do for Debian), installed with apt when missing.
#
# usage: build-librdkafka.sh CACHE_DIR
set -euo pipefail

cache=${1:?usage: build-librdkafka.sh CACHE_DIR}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
stamp="$cache/.built"
if [ -f "$stamp" ] && [ -x "$(cat "$stamp")/test-runner" ]; then
	cat "$stamp"
	exit 0
fi

log() { echo "build-librdkafka: $*" >&2; }

sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
deps="dpkg-dev gcc g++ make pkg-config python3 liblz4-dev libsasl2-dev libssl-dev libzstd-dev rapidjson-dev zlib1g-dev"
missing=""
for p in $deps; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
	log "installing:$missing"
	$sudo apt-get update -qq >&2
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >&2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. /etc/os-release
mkdir -p "$tmp/apt/lists/partial" "$tmp/apt/cache/archives/partial" "$tmp/apt/sources.list.d"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian ${VERSION_CODENAME} main" >"$tmp/apt/sources.list"
cat >"$tmp/apt/apt.conf" <<CONF
Dir::Etc::SourceList "$tmp/apt/sources.list";
Dir::Etc::SourceParts "$tmp/apt/sources.list.d";
Dir::State::Lists "$tmp/apt/lists";
Dir::Cache "$tmp/apt/cache";
CONF
# As root, apt would drop to its _apt user, who cannot write this private
# directory, and warn before downloading as root anyway.
[ "$(id -u)" -eq 0 ] && echo 'APT::Sandbox::User "root";' >>"$tmp/apt/apt.conf"
export APT_CONFIG="$tmp/apt/apt.conf"
log "fetching the librdkafka source package (${VERSION_CODENAME})"
apt-get update -qq >&2
(cd "$tmp" && apt-get source -qq librdkafka >&2)
src=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name 'librdkafka-*' | head -n1)
[ -n "$src" ] || { log "apt-get source left no librdkafka-* directory"; exit 1; }
version=${src##*/librdkafka-}

dest="$cache/librdkafka-$version"
rm -rf "$dest"
mv "$src" "$dest"
log "building librdkafka $version and its test-runner in $dest"
(
	cd "$dest"
	./configure >"$cache/configure.log" 2>&1
	make -j"$(nproc)" libs >"$cache/build.log" 2>&1
	make -j"$(nproc)" -C tests build >>"$cache/build.log" 2>&1
) || { log "build failed; last lines of the logs:"; tail -n 30 "$cache/configure.log" "$cache/build.log" >&2; exit 1; }
echo "$dest/tests" >"$stamp"
cat "$stamp"
