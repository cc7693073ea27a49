#!/bin/bash
# Build crisp on Debian 12, then run it or test it.
#
#   ./build.sh run    install the Debian packages it needs, build in build/,
#                     make install (prefix /usr/local), run crispd in the
#                     foreground
#   ./build.sh test   install the build and test packages, build in
#                     build-test/ with --enable-test-hooks, run tests/run
#
# Run as root (it installs packages, a system user and, for "run", the
# program). Idempotent and non-interactive; any failure stops it with a message.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

prog=build.sh
die() {
	echo "$prog: error: $*" >&2
	exit 1
}
trap 'echo "$prog: error: command failed (exit $?) at line $LINENO: $BASH_COMMAND" >&2' ERR

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
top=$PWD

RUN_PKGS=(
	build-essential autoconf automake libtool pkg-config
	libevent-dev libgrpc-dev libprotobuf-c-dev protobuf-c-compiler
	libseccomp-dev libcap-ng-dev libinih-dev libjansson-dev
	libssl-dev zlib1g-dev libcurl4-openssl-dev libarchive-dev nettle-dev libsqlite3-dev musl-dev
	runc containernetworking-plugins iproute2
)
# Test client (grpc + protobuf from Debian, for /usr/bin/python3), protoc for
# the CRI messages, systemd-socket-activate, test images, valgrind, and
# clang-format for the style check; for the image tests a registry, zstd
# layers, and certificates and signed tokens (python3-cryptography).
TEST_PKGS=(
	python3 python3-pytest python3-grpcio python3-protobuf protobuf-compiler
	systemd busybox-static valgrind util-linux passwd clang-format
	docker-registry zstd python3-cryptography python3-websocket
)
COMMON_CONFIGURE=(--prefix=/usr/local --sysconfdir=/etc --localstatedir=/var)

usage() {
	echo "usage: $prog run|test" >&2
	exit 2
}

# Install whichever of the packages is missing; update the lists first.
install_pkgs() {
	local missing=() p
	for p in "$@"; do
		if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
			missing+=("$p")
		fi
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] || die "packages missing (${missing[*]}) and not root to install them"
	echo "$prog: installing ${missing[*]}"
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
}

# Generate ./configure when it is missing or older than its sources.
autogen() {
	if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ] ||
		[ ! -f Makefile.in ]; then
		echo "$prog: ./autogen.sh"
		./autogen.sh
	fi
}

# configure_in DIR ARGS...: (re)configure DIR unless it is configured with ARGS.
configure_in() {
	local dir=$1 quoted have
	shift
	quoted=$(printf "'%s' " "$@")
	mkdir -p "$dir"
	if [ -x "$dir/config.status" ] && [ -f "$dir/Makefile" ]; then
		# config.status quotes arguments only where the shell needs it.
		have=$("$dir/config.status" --config 2>/dev/null || true)
		if [ "$have" = "$*" ] || [ "$have" = "${quoted% }" ]; then
			return 0
		fi
	fi
	echo "$prog: configure $* (in $dir)"
	(cd "$dir" && "$top/configure" "$@")
}

# The pod network: crisp's default bridge conflist, only when the CNI conf
# dir holds no configuration of its own (it would never replace one).
install_default_cni() {
	local dir=/etc/cni/net.d f
	for f in "$dir"/*.conf "$dir"/*.conflist "$dir"/*.json; do
		if [ -e "$f" ]; then
			echo "$prog: $dir already has a CNI config ($f): keeping it"
			return 0
		fi
	done
	mkdir -p "$dir"
	install -m 0644 contrib/cni/10-crisp-bridge.conflist "$dir/"
	echo "$prog: installed the default pod network $dir/10-crisp-bridge.conflist"
}

build_in() {
	echo "$prog: make -C $1"
	make -C "$1" -j"$(nproc)"
}

cmd=${1:-}
[ $# -eq 1 ] || usage
case $cmd in
run)
	[ "$(id -u)" -eq 0 ] || die "'run' installs crisp and runs crispd: run it as root"
	install_pkgs "${RUN_PKGS[@]}"
	autogen
	configure_in build "${COMMON_CONFIGURE[@]}"
	build_in build
	make -C build install # also creates the crisp user (scripts/create-user)
	install_default_cni
	echo "$prog: exec /usr/local/sbin/crispd"
	exec /usr/local/sbin/crispd
	;;
test)
	[ "$(id -u)" -eq 0 ] || die "the integration tests run crispd as root: run '$prog test' as root"
	install_pkgs "${RUN_PKGS[@]}" "${TEST_PKGS[@]}"
	autogen
	configure_in build-test "${COMMON_CONFIGURE[@]}" --enable-test-hooks
	build_in build-test
	scripts/create-user crisp
	export CRISP_BUILD_DIR=$top/build-test
	exec tests/run
	;;
*)
	usage
	;;
esac
