#!/usr/bin/env bash
# Lab of real systemd hosts for end-to-end tests and benchmarks.
#
# Each host is a systemd-nspawn container booting systemd as PID 1 on an
# overlayfs copy of one cached Debian 12 rootfs, in a network namespace of its
# own, wired by a veth to a bridge private to the lab. Addresses come from the
# RFC 2544 benchmarking range 198.18.0.0/15, one /24 per lab; hosts have no
# default route, so lab traffic never leaves the lab.
#
#   lab.sh up --name LAB --hosts N [--bind-ro HOSTPATH[:GUESTPATH]]... [--sysctl KEY=VALUE]...
#             [--subnet X] [--state-dir DIR] [--arch amd64|arm64]
#   lab.sh down --name LAB
#   lab.sh start-host --name LAB HOST      boot again a host whose nspawn ended (after a reboot)
#   lab.sh reboot-host --name LAB HOST     systemctl reboot inside, then boot it again
#   lab.sh status --name LAB
#   lab.sh ssh --name LAB HOST [CMD...]
#   lab.sh list
#   lab.sh arm64-check                     exit 0 when this machine can run arm64 hosts, else says why
#   lab.sh rootfs-cached [--arch ARCH]     exit 0 when the rootfs `up` needs is built already
#
# `up` prints the path of an Ansible inventory as its last stdout line. Every
# command but `up` finds the lab through its registry entry, so --state-dir is
# only needed by `up`. Settings from the environment:
#   LAB_CACHE (/var/cache/chezlepro-lab)  rootfs cache, shared by all labs
#   LAB_STATE (/var/tmp/chezlepro-lab)    parent of the labs' state dirs
#   LAB_RUN (/run/chezlepro-lab)          registry of labs and lock files
#   LAB_MIRROR                            apt mirror (default: read from /etc/apt)
#   LAB_BOOT_TIMEOUT (90; arm64: 300)     seconds to wait for a host to answer ssh
#   LAB_STOP_TIMEOUT (20)                 seconds before SIGKILL when stopping
#   LAB_TRACE=1                           trace every command, timestamped, to stderr
#   LAB_ARM64_QEMU                        qemu-user for arm64 hosts (/usr/libexec/qemu-binfmt/aarch64-binfmt-P)
set -euo pipefail
if [ -n "${LAB_TRACE:-}" ]; then
	PS4='+ ${EPOCHREALTIME} ${FUNCNAME[0]:-main}: '
	set -x
fi

SELF="$(readlink -f "$0")"
readonly SELF
readonly SUITE=bookworm
# Bump RECIPE when prepare_rootfs changes: the cache key includes it.
readonly RECIPE=3
readonly ROOTFS_PACKAGES=(systemd systemd-sysv dbus libpam-systemd openssh-server python3 iproute2
	ca-certificates sudo git curl procps less iputils-ping libcap2-bin make gpg)
# arm64 hosts run emulated (qemu-user): only what their tests need, as each
# package configured under emulation costs seconds.
readonly ROOTFS_PACKAGES_ARM64=(systemd systemd-sysv dbus libpam-systemd openssh-server python3 iproute2
	ca-certificates sudo procps)
readonly TIMERS_OFF=(apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer dpkg-db-backup.timer)
readonly MAX_HOSTS=200

CACHE="${LAB_CACHE:-/var/cache/chezlepro-lab}"
STATE_ROOT="${LAB_STATE:-/var/tmp/chezlepro-lab}"
RUN_DIR="${LAB_RUN:-/run/chezlepro-lab}"
BOOT_TIMEOUT="${LAB_BOOT_TIMEOUT:-90}"
STOP_TIMEOUT="${LAB_STOP_TIMEOUT:-20}"

# The loaded lab (load_lab, or up while it builds one).
LAB=""
# amd64: hosts run natively. arm64: in a user namespace whose own binfmt_misc
# runs arm64 binaries through qemu-user (see arm64_reason).
ARCH=amd64
STATE=""
HOSTS=0
SUBNET=""
BRIDGE=""
ROOTFS=""
BINDS=()
# Network sysctls set in each host's namespace from outside at `up`: inside,
# /proc/sys is read-only (net.ipv4.tcp_migrate_req=1 for reuseport flips).
SYSCTLS=()
CG_ROOTS=()

log() { printf 'lab %s: %s\n' "${LAB:-}" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SELF" >&2
	exit "${1:-2}"
}
now_ms() { date +%s%3N; }
elapsed() { # start_ms -> "1.234"
	local d=$(($(now_ms) - $1))
	printf '%d.%03d' $((d / 1000)) $((d % 1000))
}

# ---------------------------------------------------------------- names ----

valid_name() { [[ $1 =~ ^[a-z0-9][a-z0-9-]{0,31}$ ]]; }
host_num() { # h3 -> 3
	if ! [[ $1 =~ ^h([1-9][0-9]*)$ ]] || [ "${BASH_REMATCH[1]}" -gt "$HOSTS" ]; then
		die "no host '$1' in this lab (h1..h$HOSTS)"
	fi
	printf '%s\n' "${BASH_REMATCH[1]}"
}
net_prefix() { printf '198.%d.%d' $((18 + $1 / 256)) $(($1 % 256)); } # subnet index 0..511
host_addr() { printf '%s.%d' "$(net_prefix "$SUBNET")" $((10 + $1)); }
bridge_addr() { printf '%s.1' "$(net_prefix "$SUBNET")"; }
host_dir() { printf '%s/hosts/h%d' "$STATE" "$1"; }
host_machine() { printf '%s-h%d' "$LAB" "$1"; }
host_netns() { printf 'chezlepro-%s-h%d' "$LAB" "$1"; }
host_veth() { printf 'chzlab%dh%d' "$SUBNET" "$1"; }
# Interface aliases mark what this lab created: only those are deleted.
link_alias() { printf 'chezlepro-lab:%s%s' "$LAB" "${1:+:h$1}"; }
all_hosts() { seq 1 "$HOSTS"; }

# The cgroup hierarchies nspawn uses: the cgroup2 one (/sys/fs/cgroup/unified
# on hybrid hosts, /sys/fs/cgroup on pure v2 ones) and the v1 name=systemd one.
find_cgroup_roots() {
	CG_ROOTS=()
	local v2="" v1=""
	while read -r _ mnt type opts _; do
		case "$type" in
		cgroup2) [ -n "$v2" ] || v2="$mnt" ;;
		cgroup) [[ ,$opts, == *,name=systemd,* ]] && v1="$mnt" ;;
		esac
	done </proc/self/mounts
	[ -n "$v1" ] && CG_ROOTS+=("$v1")
	[ -n "$v2" ] && CG_ROOTS+=("$v2")
	[ ${#CG_ROOTS[@]} -gt 0 ] || die "no cgroup hierarchy mounted (need cgroup2 or a name=systemd cgroup)"
}
host_cgroups() { # n -> one cgroup dir per hierarchy
	local r
	for r in "${CG_ROOTS[@]}"; do printf '%s/nspawn-%s\n' "$r" "$(host_machine "$1")"; done
}

# ---------------------------------------------------------------- state ----

save_lab() {
	local tmp="$STATE/.lab.env.tmp" b
	{
		printf 'LAB=%q\nHOSTS=%q\nSUBNET=%q\nBRIDGE=%q\nROOTFS=%q\nARCH=%q\nBINDS=(' "$LAB" "$HOSTS" "$SUBNET" "$BRIDGE" "$ROOTFS" "$ARCH"
		for b in "${BINDS[@]}"; do printf '%q ' "$b"; done
		printf ')\n'
	} >"$tmp"
	mv -f "$tmp" "$STATE/lab.env"
}

# resolve_state DIR_OR_EMPTY: the lab's state dir, from --state-dir, the
# registry, or the default location, in that order.
resolve_state() {
	if [ -n "$1" ]; then
		STATE="$1/$LAB"
	elif [ -L "$RUN_DIR/labs/$LAB" ]; then
		STATE="$(readlink "$RUN_DIR/labs/$LAB")"
	else
		STATE="$STATE_ROOT/$LAB"
	fi
}

# An emulated systemd boots in tens of seconds, minutes on a loaded machine.
arch_settings() {
	if [ "$ARCH" = arm64 ] && [ -z "${LAB_BOOT_TIMEOUT:-}" ]; then BOOT_TIMEOUT=300; fi
}

load_lab() { # after resolve_state; fails when the lab does not exist
	[ -f "$STATE/lab.env" ] || die "no lab '$LAB' (no $STATE/lab.env); see: $0 list"
	local name="$LAB"
	# shellcheck source=/dev/null
	. "$STATE/lab.env"
	[ "$LAB" = "$name" ] || die "$STATE/lab.env belongs to lab '$LAB', not '$name'"
	arch_settings
	find_cgroup_roots
}

# lock FD FILE WHAT: flock an fd, saying so when it has to wait.
lock() {
	local fd="$1" file="$2" what="$3" mode="${4:--x}"
	eval "exec $fd>\"\$file\""
	if ! flock -n "$mode" "$fd"; then
		log "waiting for the $what lock ($file)"
		flock -w 1800 "$mode" "$fd" || die "timed out waiting for $file"
	fi
}

# Identity of a process: pid and start time, so a reused pid is never killed.
proc_alive() { # pid start -> 0 when that very process runs (not a zombie)
	local stat f
	stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
	read -r -a f <<<"${stat##*) }"
	[ "${f[19]}" = "$2" ] && [ "${f[0]}" != Z ]
}
proc_start() {
	local stat f
	stat="$(cat "/proc/$1/stat")"
	read -r -a f <<<"${stat##*) }"
	printf '%s\n' "${f[19]}"
}
host_pid() { # n -> "pid start" of its nspawn when it runs, else fails
	local p s
	read -r p s 2>/dev/null <"$(host_dir "$1")/pid" || return 1
	proc_alive "$p" "$s" && printf '%s %s\n' "$p" "$s"
}

# ----------------------------------------------------------- host setup ----

# ensure_host_packages: debootstrap, nspawn, iproute2, ssh... through the
# set-up every suite shares (its lab group).
ensure_host_packages() {
	local groups=(lab)
	[ "$ARCH" = amd64 ] || groups+=("$ARCH")
	"$(dirname "${BASH_SOURCE[0]}")/../setup.sh" "${groups[@]}" || die "the set-up failed (tests/setup.sh ${groups[*]})"
}

check_kernel() {
	grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || die "the kernel has no overlayfs"
	[ -e /proc/self/ns/net ] || die "the kernel has no network namespaces"
	find_cgroup_roots
}

# apt_mirror: the Debian mirror this machine's apt uses for $SUITE main.
apt_mirror() {
	if [ -n "${LAB_MIRROR:-}" ]; then
		printf '%s\n' "$LAB_MIRROR"
		return
	fi
	local uri="" f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri="$(awk -v suite="$SUITE" '
			BEGIN { RS = ""; FS = "\n" }
			{
				types = ""; uris = ""; suites = ""; comps = ""; enabled = "yes"
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^#/ || !match($i, /^[A-Za-z-]+:/)) continue
					k = tolower(substr($i, 1, RLENGTH - 1)); v = substr($i, RLENGTH + 1)
					gsub(/^[ \t]+|[ \t]+$/, "", v)
					if (k == "types") types = v; else if (k == "uris") uris = v
					else if (k == "suites") suites = v; else if (k == "components") comps = v
					else if (k == "enabled") enabled = v
				}
				if (enabled != "no" && (" " types " ") ~ / deb / && (" " suites " ") ~ (" " suite " ") &&
				    (" " comps " ") ~ / main /) { split(uris, u, " "); print u[1]; exit }
			}' "$f")"
		[ -n "$uri" ] && break
	done
	if [ -z "$uri" ]; then
		uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			sed -E 's/\[[^]]*\]//' |
			awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { for (i = 4; i <= NF; i++) if ($i == "main") { print $2; exit } }')"
	fi
	[ -n "$uri" ] || die "no apt source for '$SUITE main' in /etc/apt; set LAB_MIRROR"
	printf '%s\n' "$uri"
}

# --------------------------------------------------------------- rootfs ----

rootfs_packages() {
	if [ "$ARCH" = arm64 ]; then printf '%s\n' "${ROOTFS_PACKAGES_ARM64[@]}"; else printf '%s\n' "${ROOTFS_PACKAGES[@]}"; fi
}
rootfs_spec() { # what the cached rootfs depends on (amd64's as before arm64 came)
	printf 'suite=%s\nrecipe=%s\npackages=%s\n' "$SUITE" "$RECIPE" "$(rootfs_packages | sort | paste -sd, -)"
	if [ "$ARCH" != amd64 ]; then printf 'arch=%s\n' "$ARCH"; fi
}
# arm64 rootfs live in a directory of their own: the amd64 labs' collection
# (of $CACHE/rootfs-*) never sees them, nor they the amd64 ones.
cache_dir() { if [ "$ARCH" = amd64 ]; then printf '%s\n' "$CACHE"; else printf '%s/%s\n' "$CACHE" "$ARCH"; fi; }
rootfs_dir() { printf '%s/rootfs-%s' "$(cache_dir)" "$(rootfs_spec | sha256sum | cut -c1-12)"; }
rootfs_ok() {
	[ -f "$1/.chezlepro-lab-stamp" ] &&
		[ "$(head -n "$(rootfs_spec | wc -l)" "$1/.chezlepro-lab-stamp")" = "$(rootfs_spec)" ]
}

# mounted_under DIR: prints the mount points at or below DIR.
mounted_under() {
	awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo
}
# remove_tree DIR: rm -rf that never crosses into a mount left inside.
remove_tree() {
	[ -e "$1" ] || return 0
	local m
	for m in $(mounted_under "$1" | sort -r); do umount "$m" 2>/dev/null || umount -l "$m"; done
	[ -z "$(mounted_under "$1")" ] || die "still mounted under $1: $(mounted_under "$1" | paste -sd' ' -)"
	rm -rf --one-file-system -- "$1"
}

# in_root ROOT CMD...: runs CMD in the rootfs being built (arm64: emulated).
in_root() {
	local root="$1"
	shift
	if [ "$ARCH" = arm64 ]; then arm64_run "$root" /usr/bin/env "$@"; else chroot "$root" "$@"; fi
}

prepare_rootfs() { # ROOT: everything every host shares
	local root="$1" t
	in_root "$root" systemctl enable --quiet systemd-networkd.service
	for t in "${TIMERS_OFF[@]}"; do
		if [ -e "$root/lib/systemd/system/$t" ]; then in_root "$root" systemctl disable --quiet "$t"; fi
	done
	mkdir -p "$root/etc/ssh/sshd_config.d"
	cat >"$root/etc/ssh/sshd_config.d/chezlepro-lab.conf" <<-'EOF'
		# chezlepro lab: root logs in with the lab's key only.
		PermitRootLogin prohibit-password
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		UseDNS no
		HostKey /etc/ssh/ssh_host_ed25519_key
	EOF
	# Host keys and machine-id are made per host when it is created.
	rm -f "$root"/etc/ssh/ssh_host_*
	ln -sfn /etc/machine-id "$root/var/lib/dbus/machine-id"
	# No DNS in the lab: names are in /etc/hosts, other lookups fail at once.
	printf '# chezlepro lab: no DNS; lab names are in /etc/hosts\n' >"$root/etc/resolv.conf"
	printf 'LANG=C.UTF-8\n' >"$root/etc/default/locale"
	install -d -m 0700 "$root/root/.ssh"
	# The console (hosts/hN/console.log) shows boot status and warnings; no
	# getty on it.
	in_root "$root" systemctl mask --quiet console-getty.service
	mkdir -p "$root/etc/systemd/journald.conf.d"
	printf '[Journal]\nForwardToConsole=yes\nMaxLevelConsole=warning\n' >"$root/etc/systemd/journald.conf.d/chezlepro-lab.conf"
	in_root "$root" apt-get clean
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/var/log/apt/*
}

# ensure_rootfs: sets ROOTFS, building it once. Every `up` holds the cache
# lock (fd 7) shared until its overlays are mounted; removing an unused
# rootfs takes it exclusive, so never while a lab is being set up or a rootfs
# built. Builds of one version are serialised by a lock of their own (fd 6),
# so labs using another version never wait for them.
ensure_rootfs() {
	local key cache
	cache="$(cache_dir)"
	mkdir -p "$cache"
	ROOTFS="$(rootfs_dir)"
	key="${ROOTFS##*/rootfs-}"
	while :; do
		lock 7 "$cache/.lock" rootfs -s
		if ! rootfs_ok "$ROOTFS"; then
			lock 6 "$cache/.build-$key.lock" "rootfs build"
			rootfs_ok "$ROOTFS" || build_rootfs "$key"
			exec 6>&-
			continue
		fi
		# Converting the lock may drop it: take it again afterwards.
		if flock -n -x 7; then collect_rootfs; fi
		lock 7 "$cache/.lock" rootfs -s
		rootfs_ok "$ROOTFS" && return 0
	done
}

collect_rootfs() { # under the exclusive lock: versions no overlay uses
	local d
	for d in "$(cache_dir)"/.build-*.* "$(cache_dir)"/rootfs-*; do
		if [ ! -d "$d" ] || [ "$d" = "$ROOTFS" ]; then continue; fi
		if ! grep -qF "lowerdir=$d," /proc/self/mountinfo; then
			log "removing unused $d"
			remove_tree "$d"
		fi
	done
}

build_rootfs() { # KEY, under its build lock
	local mirror tmp start d cache
	cache="$(cache_dir)"
	for d in "$cache/.build-$1".*; do if [ -d "$d" ]; then remove_tree "$d"; fi; done
	mirror="$(apt_mirror)"
	tmp="$(mktemp -d "$cache/.build-$1.XXXXXX")"
	BUILD_TMP="$tmp"
	start="$(now_ms)"
	log "building the Debian $SUITE $ARCH rootfs from $mirror (once; cached in $cache)"
	local include args=(--variant=minbase)
	include="$(rootfs_packages | paste -sd, -)"
	# arm64: debootstrap unpacks here, then configures the packages with
	# them running emulated in the rootfs (its --second-stage).
	[ "$ARCH" = amd64 ] || args+=(--arch="$ARCH" --foreign)
	build_step "$tmp" debootstrap "${args[@]}" --include="$include" "$SUITE" "$tmp/root" "$mirror"
	if [ "$ARCH" = arm64 ]; then
		# Where debootstrap takes this machine for docker (/.dockerenv) it
		# makes /proc a symlink to /proc, on which nspawn fails (ELOOP).
		if [ -L "$tmp/root/proc" ]; then rm "$tmp/root/proc" && mkdir -m 0555 "$tmp/root/proc"; fi
		# container=lxc: in the user namespace mknod is refused, and
		# debootstrap skips its mknod test of the target only for lxc.
		build_step "$tmp" arm64_run "$tmp/root" /usr/bin/env container=lxc /debootstrap/debootstrap --second-stage
	fi
	prepare_rootfs "$tmp/root"
	{
		rootfs_spec
		printf 'mirror=%s\nbuilt=%s\n' "$mirror" "$(date -u +%FT%TZ)"
	} >"$tmp/root/.chezlepro-lab-stamp"
	[ -z "$(mounted_under "$tmp")" ] || die "debootstrap left mounts under $tmp"
	mv -T "$tmp/root" "$ROOTFS"
	remove_tree "$tmp"
	BUILD_TMP=""
	log "rootfs built in $(elapsed "$start") s ($(du -sm "$ROOTFS" | cut -f1) MiB): $ROOTFS"
}

# build_step TMP CMD...: one step of a rootfs build, output in TMP/build.log.
# In the background so a signal is handled at once, not after minutes; in a
# session of its own (pgid = pid), so an interruption stops all it runs.
build_step() {
	local tmp="$1"
	shift
	printf '+ %s\n' "$*" >>"$tmp/build.log"
	setsid "$SELF" __build_step "$ARCH" "$@" >>"$tmp/build.log" 2>&1 </dev/null 6>&- 7>&- 8>&- 9>&- &
	BUILD_PID=$!
	if ! wait "$BUILD_PID"; then
		BUILD_PID=""
		tail -n 20 "$tmp/build.log" >&2
		die "$1 failed (log above)"
	fi
	BUILD_PID=""
}
internal_build_step() {
	ARCH="$1"
	shift
	find_cgroup_roots
	"$@"
}

# ---------------------------------------------------------------- arm64 ----

# arm64 hosts: the rootfs is Debian's arm64, and every arm64 program in it
# runs through qemu-user (Debian's qemu-user-static), found by the kernel's
# binfmt_misc. Not the machine's own binfmt_misc: a handler there would make
# every amd64 lab host run arm64 binaries as well (the dispatch e2e shows
# that its amd64 hosts refuse them). Since Linux 6.7 a user namespace that
# mounts binfmt_misc has an instance of its own: each arm64 host (and each
# step of the build) runs in a user namespace (nspawn --private-users=identity:
# the same uids, so the rootfs needs no shifting), and its first process,
# binfmtinit (a static amd64 Go program, tests/lab/binfmtinit), registers
# qemu there with the F flag, then execs the arm64 systemd.
ARM64_QEMU="${LAB_ARM64_QEMU:-/usr/libexec/qemu-binfmt/aarch64-binfmt-P}" # a setting for the tests
readonly ARM64_DIR=/run/chezlepro-arm64 # in the host: qemu and binfmtinit, read-only

# arm64_init DIR: builds binfmtinit into DIR (offline, from this checkout).
arm64_init() {
	local repo go
	repo="$(cd "$(dirname "$SELF")/../.." && pwd)"
	go="$("$repo/tests/setup.sh" --go-root)/bin/go"
	(cd "$repo" && GOFLAGS=-mod=vendor GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0 \
		"$go" build -trimpath -o "$1/binfmtinit" ./tests/lab/binfmtinit) ||
		die "could not build tests/lab/binfmtinit"
}

# arm64_reason: prints why this machine cannot run arm64 hosts and fails, or
# prints nothing. It tries the very mechanism: a user namespace mounting its
# own binfmt_misc and registering qemu there.
arm64_reason() {
	local tmp out
	if [ ! -e "$ARM64_QEMU" ]; then
		echo "no $ARM64_QEMU (Debian package qemu-user-static; tests/setup.sh arm64 installs it)"
		return 1
	fi
	if ! grep -qw binfmt_misc /proc/filesystems && ! modprobe binfmt_misc 2>/dev/null; then
		echo "the kernel $(uname -r) has no binfmt_misc"
		return 1
	fi
	tmp="$(mktemp -d)"
	arm64_init "$tmp"
	if ! out="$(unshare --user --map-root-user --mount "$tmp/binfmtinit" "$ARM64_QEMU" /bin/true 2>&1)"; then
		rm -rf "$tmp"
		# Not in the machine's own binfmt_misc instead: the amd64 lab hosts
		# would run arm64 binaries too.
		echo "a user namespace could not register qemu in a binfmt_misc of its own (kernel $(uname -r); Linux 6.7 or later can): ${out#binfmtinit: }"
		return 1
	fi
	rm -rf "$tmp"
}

# The nspawn options an arm64 host or build step adds: a user namespace with
# the same uids, and qemu and binfmtinit mounted read-only at ARM64_DIR.
arm64_nspawn_args() { # DIR_WITH_BINFMTINIT
	printf '%s\n' --private-users=identity --bind-ro="$(readlink -f "$ARM64_QEMU"):$ARM64_DIR/aarch64-binfmt-P" \
		--bind-ro="$1/binfmtinit:$ARM64_DIR/binfmtinit"
}

# arm64_run ROOT CMD...: runs CMD (an absolute path) in ROOT, emulated, as
# PID 2 of a one-off container with no network, in a cgroup of its own.
arm64_run() {
	local root="$1" cg rc=0
	shift
	[ -x "$root.init/binfmtinit" ] || { mkdir -p "$root.init" && arm64_init "$root.init"; }
	local name="nspawn-chezlepro-lab-build-$$-$RANDOM" d
	# Those an interrupted build left: rmdir removes only a cgroup with no
	# process left in it, so never a running build's.
	for cg in "${CG_ROOTS[@]}"; do
		for d in "$cg"/nspawn-chezlepro-lab-build-*; do
			if [ -d "$d" ]; then find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
		done
	done
	(
		for cg in "${CG_ROOTS[@]}"; do
			mkdir -p "$cg/$name"
			echo "$BASHPID" >"$cg/$name/cgroup.procs"
		done
		local args
		mapfile -t args < <(arm64_nspawn_args "$root.init")
		exec env SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 unshare --mount --propagation private -- \
			"$SELF" __nspawn_run -q -D "$root" --as-pid2 --register=no --keep-unit --private-network \
			--resolv-conf=off --timezone=off --link-journal=no "${args[@]}" \
			"$ARM64_DIR/binfmtinit" "$ARM64_DIR/aarch64-binfmt-P" "$@"
	) || rc=$?
	for cg in "${CG_ROOTS[@]}"; do
		if [ -d "$cg/$name" ]; then find "$cg/$name" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
	done
	return "$rc"
}
internal_nspawn_run() { # in its own mount namespace: nspawn's own /run/systemd/nspawn
	mkdir -p /run/systemd/nspawn
	mount -t tmpfs -o mode=0755,size=4m chezlepro-lab /run/systemd/nspawn
	exec systemd-nspawn "$@"
}

# -------------------------------------------------------------- network ----

subnet_free() { # index -> 0 when no interface, address or route uses it
	local p
	p="$(net_prefix "$1")"
	! ip link show "chzlab$1" >/dev/null 2>&1 &&
		[ -z "$(ip -4 -o addr show to "$p.0/24")" ] &&
		[ -z "$(ip -4 route show table all root "$p.0/24")" ]
}

# setup_bridge REQUESTED: picks the lab's /24 (hash of the name, probing
# forward on collision, or REQUESTED) and creates its bridge.
setup_bridge() {
	lock 9 "$RUN_DIR/net.lock" network
	local idx i
	if [ -n "$1" ]; then
		subnet_free "$1" || die "subnet $(net_prefix "$1").0/24 is in use"
		idx="$1"
	else
		local h
		h="$(printf '%s' "$LAB" | sha256sum | cut -c1-8)"
		for ((i = 0; i < 512; i++)); do
			idx=$(((16#$h + i) % 512))
			subnet_free "$idx" && break
			idx=""
		done
		[ -n "$idx" ] || die "no free /24 left in 198.18.0.0/15"
	fi
	SUBNET="$idx"
	BRIDGE="chzlab$idx"
	save_lab
	# Create and mark as ours with no signal in between.
	trap '' INT TERM HUP
	ip link add name "$BRIDGE" type bridge
	ip link set dev "$BRIDGE" alias "$(link_alias)"
	trap on_signal INT TERM HUP
	# Whatever the host's ip_forward, nothing that comes from the lab is
	# routed on: no IPv4 forwarding from the bridge, no IPv6 on it at all.
	echo 0 >"/proc/sys/net/ipv4/conf/$BRIDGE/forwarding"
	if [ -e "/proc/sys/net/ipv6/conf/$BRIDGE" ]; then echo 1 >"/proc/sys/net/ipv6/conf/$BRIDGE/disable_ipv6"; fi
	ip addr add "$(bridge_addr)/24" dev "$BRIDGE"
	ip link set dev "$BRIDGE" up
	exec 9>&-
}

link_is_ours() { # ifname alias
	[ "$(cat "/sys/class/net/$1/ifalias" 2>/dev/null)" = "$2" ]
}

setup_host_net() { # n
	local ns veth addr
	ns="$(host_netns "$1")"
	veth="$(host_veth "$1")"
	addr="$(host_addr "$1")"
	ip netns add "$ns"
	trap '' INT TERM HUP
	ip link add name "$veth" type veth peer name host0 netns "$ns"
	ip link set dev "$veth" alias "$(link_alias "$1")"
	trap on_signal INT TERM HUP
	ip link set dev "$veth" master "$BRIDGE" up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$addr/24" dev host0
	ip -n "$ns" link set host0 up
	local kv sysctls=("${SYSCTLS[@]}")
	# An arm64 host's root has no power over this namespace (owned by the
	# machine's user namespace): without this, sshd may not bind port 22.
	[ "$ARCH" = amd64 ] || sysctls+=(net.ipv4.ip_unprivileged_port_start=0)
	for kv in "${sysctls[@]}"; do
		ip netns exec "$ns" sysctl -qw "$kv" || die "cannot set $kv in the network namespace $ns"
	done
}

# ---------------------------------------------------------------- hosts ----

mount_overlay() { # n
	local d
	d="$(host_dir "$1")"
	mkdir -p "$d/upper" "$d/work" "$d/root"
	mountpoint -q "$d/root" ||
		mount -t overlay "overlay-$(host_machine "$1")" \
			-o "lowerdir=$ROOTFS,upperdir=$d/upper,workdir=$d/work" "$d/root"
}

etc_hosts() {
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n'
	printf '%s\tlab-bridge\n' "$(bridge_addr)"
	local n
	for n in $(all_hosts); do printf '%s\th%d\n' "$(host_addr "$n")" "$n"; done
}

# create_host n: the files that make this copy host hN (first boot only).
create_host() {
	local n="$1" root
	root="$(host_dir "$n")/root"
	printf 'h%d\n' "$n" >"$root/etc/hostname"
	etc_hosts >"$root/etc/hosts"
	tr -d '-' </proc/sys/kernel/random/uuid >"$root/etc/machine-id"
	mkdir -p "$root/etc/systemd/network"
	printf '[Match]\nName=host0\n\n[Network]\nAddress=%s/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n' \
		"$(host_addr "$n")" >"$root/etc/systemd/network/10-host0.network"
	install -m 0600 "$STATE/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
	# systemd-binfmt starts by removing every handler in binfmt_misc: on an
	# arm64 host, the one binfmtinit registered, and nothing arm64 would
	# start after it.
	if [ "$ARCH" = arm64 ]; then
		ln -sfn /dev/null "$root/etc/systemd/system/systemd-binfmt.service"
		# Emulated, systemd fails to set up service credentials (EINVAL
		# from qemu-user): these units get none, as they use none here.
		local u
		for u in systemd-sysusers systemd-tmpfiles-setup systemd-tmpfiles-setup-dev; do
			mkdir -p "$root/etc/systemd/system/$u.service.d"
			printf '[Service]\nLoadCredential=\nSetCredential=\n' >"$root/etc/systemd/system/$u.service.d/chezlepro-arm64.conf"
		done
	fi
	ssh-keygen -q -t ed25519 -N '' -C "root@h$n" -f "$root/etc/ssh/ssh_host_ed25519_key"
}

# launch N...: starts each host's nspawn in a session of its own, in the
# background; its pid (the same through every exec) lands in hosts/hN/pid.
launch() {
	local n d i
	for n in "$@"; do
		d="$(host_dir "$n")"
		rm -f "$d/pid"
		clean_cgroups "$n"
		printf -- '--- %s: starting h%d\n' "$(date -u +%FT%TZ)" "$n" >>"$d/console.log"
		setsid "$SELF" __launch "$STATE" "$n" </dev/null >>"$d/console.log" 2>&1 6>&- 7>&- 8>&- 9>&- &
	done
	for n in "$@"; do
		d="$(host_dir "$n")"
		for ((i = 0; i < 200; i++)); do
			[ -s "$d/pid" ] && break
			sleep 0.05
		done
		[ -s "$d/pid" ] || die "h$n: nspawn did not start; $d/console.log:$(printf '\n'; tail -n 20 "$d/console.log")"
	done
}

# Runs as the launched process: joins the host's cgroups, records its pid,
# then execs (same pid) a private mount namespace, then nspawn.
internal_launch() {
	STATE="$1"
	LAB="${STATE##*/}"
	load_lab
	local n="$2" cg d fd
	d="$(host_dir "$n")"
	# Nothing the caller had open may stay open in the host's lifetime (a
	# pipe held open would hang whoever reads it).
	for fd in "/proc/$$/fd"/*; do
		fd="${fd##*/}"
		if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
	done
	for cg in $(host_cgroups "$n"); do
		mkdir -p "$cg"
		echo $$ >"$cg/cgroup.procs"
	done
	printf '%s %s\n' $$ "$(proc_start $$)" >"$d/pid.tmp"
	mv -f "$d/pid.tmp" "$d/pid"
	exec env SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 unshare --mount --propagation private -- "$SELF" __nspawn "$STATE" "$n"
}

internal_nspawn() {
	STATE="$1"
	LAB="${STATE##*/}"
	load_lab
	local n="$2" b
	# /run is no tmpfs on these hosts: give nspawn one of its own, which
	# vanishes with this mount namespace.
	mkdir -p /run/systemd/nspawn
	mount -t tmpfs -o mode=0755,size=4m chezlepro-lab /run/systemd/nspawn
	local netns
	netns="/run/netns/$(host_netns "$n")"
	local args=(-D "$(host_dir "$n")/root" -M "$(host_machine "$n")"
		--console=read-only --register=no --keep-unit --resolv-conf=off --timezone=off --link-journal=no
		# nspawn's seccomp filter refuses pidfd_getfd(2), which a VM or a
		# bare host allows root: bluegreen_unit steers SO_REUSEPORT groups
		# through it.
		--system-call-filter=pidfd_getfd)
	for b in "${BINDS[@]}"; do args+=("--bind-ro=$b"); done
	if [ "$ARCH" = arm64 ]; then
		# binfmtinit first, then the emulated systemd as PID 1 (what -b
		# would start), halted by the signal -b would send.
		mapfile -t -O "${#args[@]}" args < <(arm64_nspawn_args "$STATE")
		args+=(--kill-signal=SIGRTMIN+3 "$ARM64_DIR/binfmtinit" "$ARM64_DIR/aarch64-binfmt-P" /lib/systemd/systemd)
		# In a user namespace nspawn may not join a network namespace
		# (EPERM): it starts in it instead, and the host shares it.
		exec nsenter --net="$netns" systemd-nspawn "${args[@]}"
	fi
	exec systemd-nspawn -b --network-namespace-path="$netns" "${args[@]}"
}

SSH_OPTS=()
ssh_opts() { # the options of every ssh to the lab; $1=master adds connection sharing
	SSH_OPTS=(-i "$STATE/id_ed25519" -o IdentitiesOnly=yes -o StrictHostKeyChecking=no
		-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes -o ConnectTimeout=5)
	if [ "${1:-}" = master ]; then
		SSH_OPTS+=(-o ControlMaster=auto -o ControlPersist=60s -o "ControlPath=$STATE/cm/%h")
	else
		SSH_OPTS+=(-o ControlPath=none)
	fi
}

# wait_host n deadline_s: until sshd answers and systemd finished booting.
# Prints "running" or "degraded: UNITS"; fails with the console tail.
wait_host() {
	local n="$1" deadline="$2" addr d out rem
	addr="$(host_addr "$n")"
	d="$(host_dir "$n")"
	ssh_opts
	while :; do
		if ! host_pid "$n" >/dev/null; then
			printf 'h%d: nspawn exited during boot; %s:\n' "$n" "$d/console.log"
			tail -n 30 "$d/console.log"
			return 1
		fi
		rem=$((deadline - $(date +%s)))
		if [ "$rem" -le 0 ]; then
			printf 'h%d (%s): no ssh with a finished boot after %s s; %s:\n' "$n" "$addr" "$BOOT_TIMEOUT" "$d/console.log"
			tail -n 30 "$d/console.log"
			return 1
		fi
		# Refused at once until sshd listens: no port probe (it would log
		# a kex error in the host), ssh itself is the probe.
		# shellcheck disable=SC2016
		out="$(timeout "$rem" ssh "${SSH_OPTS[@]}" "root@$addr" \
			's=$(systemctl is-system-running --wait); echo "$s"; if [ "$s" = degraded ]; then systemctl list-units --failed --no-legend --plain | cut -d" " -f1 | paste -sd" " -; fi' \
			2>/dev/null)" || true
		case "${out%%$'\n'*}" in
		running)
			echo running
			return 0
			;;
		degraded)
			printf 'degraded: %s\n' "$(sed -n 2p <<<"$out")"
			return 0
			;;
		"" | initializing | starting) ;;
		*)
			printf 'h%d: systemd state is "%s"; %s:\n' "$n" "${out%%$'\n'*}" "$d/console.log"
			tail -n 30 "$d/console.log"
			return 1
			;;
		esac
		sleep 0.1
	done
}

WAITERS=()
# wait_hosts N...: waits for all in parallel; fails when any did not boot.
wait_hosts() {
	local deadline n i=0 failed=0 out
	deadline=$(($(date +%s) + BOOT_TIMEOUT))
	WAITERS=()
	for n in "$@"; do
		wait_host "$n" "$deadline" >"$(host_dir "$n")/boot.status" 2>&1 &
		WAITERS+=($!)
	done
	for n in "$@"; do
		if ! wait "${WAITERS[i]}"; then failed=1; fi
		i=$((i + 1))
		out="$(cat "$(host_dir "$n")/boot.status")"
		case "$out" in
		running) ;;
		degraded:*) log "h$n is up but degraded; failed units: ${out#degraded: }" ;;
		*) log "$out" ;;
		esac
	done
	WAITERS=()
	[ "$failed" -eq 0 ]
}

# stop_hosts N...: SIGTERM to each nspawn (a clean halt), SIGKILL after
# STOP_TIMEOUT, then kills whatever is left in the hosts' cgroups.
stop_hosts() {
	local n p s pending=() left=()
	for n in "$@"; do
		if read -r p s < <(host_pid "$n"); then
			kill -TERM "$p" 2>/dev/null || true
			pending+=("$n")
		fi
	done
	local deadline=$(($(date +%s) + STOP_TIMEOUT))
	while [ ${#pending[@]} -gt 0 ] && [ "$(date +%s)" -lt "$deadline" ]; do
		sleep 0.1
		left=()
		for n in "${pending[@]}"; do host_pid "$n" >/dev/null && left+=("$n"); done
		pending=("${left[@]}")
	done
	for n in "${pending[@]}"; do
		if read -r p s < <(host_pid "$n"); then
			log "h$n did not halt in $STOP_TIMEOUT s: SIGKILL"
			kill -KILL "$p" 2>/dev/null || true
		fi
	done
	for n in "$@"; do kill_cgroups "$n"; done
}

cgroup_procs() { # n -> the pids in the host's cgroups
	local cg
	for cg in $(host_cgroups "$1"); do
		[ -d "$cg" ] && find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null
	done | sort -u
}

kill_cgroups() { # n: SIGKILL what is left in the host's cgroups (only ours)
	local cg p i
	[ -n "$(cgroup_procs "$1")" ] || return 0
	for cg in $(host_cgroups "$1"); do
		if [ -f "$cg/cgroup.kill" ]; then echo 1 >"$cg/cgroup.kill" 2>/dev/null || true; fi
	done
	for p in $(cgroup_procs "$1"); do kill -KILL "$p" 2>/dev/null || true; done
	for ((i = 0; i < 100; i++)); do
		[ -z "$(cgroup_procs "$1")" ] && return 0
		sleep 0.05
	done
	log "h$1: processes left in its cgroups: $(cgroup_procs "$1" | paste -sd' ' -)"
}

clean_cgroups() { # n: removes the host's cgroup trees, bottom-up
	local cg
	for cg in $(host_cgroups "$1"); do
		[ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
		[ -d "$cg" ] && log "h$1: could not remove cgroup $cg"
	done
	return 0
}

# close_masters: ends the ssh connection-sharing masters of this lab (those
# started by `lab.sh ssh` or Ansible with the inventory's ControlPath).
close_masters() {
	local sock
	for sock in "$STATE"/cm/*; do
		[ -S "$sock" ] || continue
		timeout 5 ssh -o ControlPath="$sock" -O exit lab-host >/dev/null 2>&1 || true
		rm -f "$sock"
	done
}

# teardown: removes everything this lab created; safe on a half-made lab.
teardown() {
	local n ns veth root
	[ -d "$STATE" ] || return 0
	if [ -f "$STATE/lab.env" ]; then
		load_lab
		close_masters
		local nums
		mapfile -t nums < <(all_hosts)
		stop_hosts "${nums[@]}"
		for n in $(all_hosts); do
			clean_cgroups "$n"
			if [ -n "$SUBNET" ]; then
				veth="$(host_veth "$n")"
				if link_is_ours "$veth" "$(link_alias "$n")"; then ip link del "$veth"; fi
			fi
			ns="$(host_netns "$n")"
			if [ -e "/run/netns/$ns" ]; then ip netns del "$ns"; fi
			root="$(host_dir "$n")/root"
			if mountpoint -q "$root"; then umount "$root" || umount -l "$root"; fi
		done
		if [ -n "$BRIDGE" ] && link_is_ours "$BRIDGE" "$(link_alias)"; then ip link del "$BRIDGE"; fi
	fi
	remove_tree "$STATE"
	if [ "$(readlink "$RUN_DIR/labs/$LAB" 2>/dev/null)" = "$STATE" ]; then rm -f "$RUN_DIR/labs/$LAB"; fi
}

# ------------------------------------------------------------- commands ----

write_inventory() {
	local inv="$STATE/inventory.ini" n
	{
		printf '# Lab %s, written by tests/lab/lab.sh; removed by: lab.sh down --name %s\n' "$LAB" "$LAB"
		printf '[lab]\n'
		for n in $(all_hosts); do
			printf 'h%d ansible_host=%s lab_address=%s\n' "$n" "$(host_addr "$n")" "$(host_addr "$n")"
		done
		printf '\n[lab:vars]\nansible_user=root\nansible_ssh_private_key_file=%s\n' "$STATE/id_ed25519"
		printf "ansible_ssh_common_args='-o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ControlMaster=auto -o ControlPersist=60s -o ControlPath=%s/cm/%%h'\n" "$STATE"
		printf 'ansible_python_interpreter=/usr/bin/python3\nlab_name=%s\nlab_bridge_address=%s\nlab_subnet=%s.0/24\nlab_arch=%s\n' \
			"$LAB" "$(bridge_addr)" "$(net_prefix "$SUBNET")" "$ARCH"
	} >"$inv.tmp"
	mv -f "$inv.tmp" "$inv"
}

UP_DONE=false
BUILD_TMP=""
BUILD_PID=""
on_exit() {
	local rc=$?
	if [ ${#WAITERS[@]} -gt 0 ]; then kill "${WAITERS[@]}" 2>/dev/null || true; fi
	if ! $UP_DONE; then
		trap '' INT TERM HUP
		if [ -n "$BUILD_PID" ]; then stop_group "$BUILD_PID"; fi
		if [ -n "$BUILD_TMP" ]; then remove_tree "$BUILD_TMP"; fi
		log "up failed: tearing down what it started"
		teardown || log "teardown failed: run $0 down --name $LAB"
	fi
	exit "$rc"
}
on_signal() { exit 130; }

stop_group() { # pgid: SIGTERM to the process group this script started, SIGKILL after 10 s
	local i
	kill -TERM -- "-$1" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 -- "-$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

cmd_up() {
	local state_dir="" subnet="" bind src dst
	HOSTS=1
	while [ $# -gt 0 ]; do
		case "$1" in
		--name) LAB="$2"; shift 2 ;;
		--hosts) HOSTS="$2"; shift 2 ;;
		--bind-ro) BINDS+=("$2"); shift 2 ;;
		--sysctl) SYSCTLS+=("$2"); shift 2 ;;
		--state-dir) state_dir="$2"; shift 2 ;;
		--subnet) subnet="$2"; shift 2 ;;
		--arch) ARCH="$2"; shift 2 ;;
		*) usage ;;
		esac
	done
	case "$ARCH" in amd64 | arm64) ;; *) die "--arch $ARCH: want amd64 or arm64" ;; esac
	arch_settings
	valid_name "$LAB" || die "--name: want 1-32 of [a-z0-9-], starting with a letter or digit"
	if ! [[ $HOSTS =~ ^[1-9][0-9]*$ ]] || [ "$HOSTS" -gt $MAX_HOSTS ]; then die "--hosts: want 1..$MAX_HOSTS"; fi
	if [ -n "$subnet" ] && { ! [[ $subnet =~ ^[0-9]+$ ]] || [ "$subnet" -ge 512 ]; }; then
		die "--subnet: want 0..511 (0-255: 198.18.X.0/24, 256-511: 198.19.X-256.0/24)"
	fi
	for bind in "${BINDS[@]}"; do
		src="${bind%%:*}"
		dst="${bind#*:}"
		if ! [[ $bind =~ ^/[^,[:space:]]*$ ]] || [[ $dst != /* ]] || [[ $dst == *:* ]]; then
			die "--bind-ro $bind: want /HOSTPATH[:/GUESTPATH]"
		fi
		[ -e "$src" ] || die "--bind-ro $bind: $src does not exist"
	done
	[ "$(id -u)" -eq 0 ] || die "must run as root"
	if [ -n "$state_dir" ]; then state_dir="$(realpath -m -- "$state_dir")"; fi
	local start
	start="$(now_ms)"
	ensure_host_packages
	check_kernel
	if [ "$ARCH" = arm64 ]; then
		local why
		why="$(arm64_reason)" || die "--arch arm64: $why"
	fi

	mkdir -p "$RUN_DIR/labs"
	lock 8 "$RUN_DIR/$LAB.lock" lab
	resolve_state "$state_dir"
	[[ $STATE =~ ^/[A-Za-z0-9._/-]+$ ]] || die "state dir $STATE: want an absolute path of [A-Za-z0-9._/-]"
	# ssh sockets: STATE/cm/198.19.255.254 plus ssh's 17-char temp suffix < 108
	[ ${#STATE} -le 70 ] || die "state dir $STATE is too long for ssh control sockets (max 70 chars)"
	if [ -e "$RUN_DIR/labs/$LAB" ] || [ -L "$RUN_DIR/labs/$LAB" ]; then
		die "lab '$LAB' exists ($(readlink "$RUN_DIR/labs/$LAB")); remove it first: $0 down --name $LAB"
	fi
	[ ! -e "$STATE" ] || die "$STATE exists; remove it first: $0 down --name $LAB --state-dir ${state_dir:-$STATE_ROOT}"
	trap on_exit EXIT
	trap on_signal INT TERM HUP
	mkdir -p "$STATE/hosts" "$STATE/cm"
	save_lab
	ln -s "$STATE" "$RUN_DIR/labs/$LAB"
	ssh-keygen -q -t ed25519 -N '' -C "chezlepro-lab-$LAB" -f "$STATE/id_ed25519"

	ensure_rootfs
	if [ "$ARCH" = arm64 ]; then arm64_init "$STATE"; fi
	save_lab
	setup_bridge "$subnet"
	local n nums
	for n in $(all_hosts); do
		mount_overlay "$n"
		create_host "$n"
		setup_host_net "$n"
	done
	exec 7>&- # the overlays now keep the rootfs from being collected
	local boot
	boot="$(now_ms)"
	mapfile -t nums < <(all_hosts)
	launch "${nums[@]}"
	wait_hosts "${nums[@]}" || die "hosts did not boot (see above); tearing down"
	write_inventory
	UP_DONE=true
	log "$HOSTS host(s) up on $(net_prefix "$SUBNET").0/24 in $(elapsed "$start") s (boot $(elapsed "$boot") s)"
	printf '%s\n' "$STATE/inventory.ini"
}

# parse_lab_args: [--name LAB] [--state-dir DIR] [HOST [ARGS...]] -> LAB,
# STATE, ARG_HOST, REST; options go before HOST, everything after it is REST.
parse_lab_args() {
	local state_dir=""
	ARG_HOST=""
	REST=()
	while [ $# -gt 0 ]; do
		case "$1" in
		--name) LAB="$2"; shift 2 ;;
		--state-dir) state_dir="$(realpath -m -- "$2")"; shift 2 ;;
		-*) usage ;;
		*)
			ARG_HOST="$1"
			shift
			REST=("$@")
			break
			;;
		esac
	done
	valid_name "$LAB" || die "--name LAB is required (1-32 of [a-z0-9-])"
	resolve_state "$state_dir"
}

cmd_down() {
	parse_lab_args "$@"
	[ -z "$ARG_HOST" ] || usage
	[ "$(id -u)" -eq 0 ] || die "must run as root"
	mkdir -p "$RUN_DIR/labs"
	lock 8 "$RUN_DIR/$LAB.lock" lab
	if [ ! -d "$STATE" ]; then
		if [ -L "$RUN_DIR/labs/$LAB" ]; then rm -f "$RUN_DIR/labs/$LAB"; fi
		log "not up (no $STATE)"
		return 0
	fi
	local start
	start="$(now_ms)"
	trap '' INT HUP
	teardown
	log "down in $(elapsed "$start") s"
}

# start_host n: boots an existing host whose nspawn ended, keeping its disk.
start_host() {
	local n="$1" state
	if host_pid "$n" >/dev/null; then
		ssh_opts
		state="$(timeout 10 ssh "${SSH_OPTS[@]}" "root@$(host_addr "$n")" systemctl is-system-running 2>/dev/null)" || true
		case "$state" in
		running | degraded)
			log "h$n is already running"
			return 0
			;;
		esac
		log "h$n: nspawn still runs (state '${state:-no ssh}'): waiting up to $STOP_TIMEOUT s for it to end"
		local deadline=$(($(date +%s) + STOP_TIMEOUT))
		while host_pid "$n" >/dev/null; do
			[ "$(date +%s)" -lt "$deadline" ] || die "h$n is still running; use reboot-host"
			sleep 0.1
		done
	fi
	kill_cgroups "$n"
	local start
	start="$(now_ms)"
	mount_overlay "$n"
	launch "$n"
	wait_hosts "$n" || die "h$n did not boot (see above)"
	log "h$n started in $(elapsed "$start") s"
}

cmd_start_host() {
	parse_lab_args "$@"
	if [ -z "$ARG_HOST" ] || [ ${#REST[@]} -gt 0 ]; then usage; fi
	lock 8 "$RUN_DIR/$LAB.lock" lab
	load_lab
	start_host "$(host_num "$ARG_HOST")"
}

cmd_reboot_host() {
	parse_lab_args "$@"
	if [ -z "$ARG_HOST" ] || [ ${#REST[@]} -gt 0 ]; then usage; fi
	lock 8 "$RUN_DIR/$LAB.lock" lab
	load_lab
	local n start deadline
	n="$(host_num "$ARG_HOST")"
	host_pid "$n" >/dev/null || die "h$n is not running; use start-host"
	start="$(now_ms)"
	if [ -S "$STATE/cm/$(host_addr "$n")" ]; then
		timeout 5 ssh -o ControlPath="$STATE/cm/$(host_addr "$n")" -O exit lab-host >/dev/null 2>&1 || true
	fi
	ssh_opts
	timeout 15 ssh "${SSH_OPTS[@]}" "root@$(host_addr "$n")" systemctl reboot >/dev/null 2>&1 || true
	deadline=$(($(date +%s) + BOOT_TIMEOUT))
	while host_pid "$n" >/dev/null; do
		[ "$(date +%s)" -lt "$deadline" ] ||
			die "h$n: nspawn still runs $BOOT_TIMEOUT s after 'systemctl reboot'; $(host_dir "$n")/console.log:$(printf '\n'; tail -n 20 "$(host_dir "$n")/console.log")"
		sleep 0.1
	done
	log "h$n halted for reboot in $(elapsed "$start") s"
	start_host "$n"
}

cmd_status() {
	parse_lab_args "$@"
	[ -z "$ARG_HOST" ] || usage
	load_lab
	printf 'lab %s: %d host(s), subnet %s.0/24, bridge %s (%s), state %s\n' "$LAB" "$HOSTS" \
		"$(net_prefix "$SUBNET")" "$BRIDGE" "$(bridge_addr)" "$STATE"
	local n p s state bad=0
	ssh_opts
	for n in $(all_hosts); do
		if read -r p s < <(host_pid "$n"); then
			state="$(timeout 10 ssh "${SSH_OPTS[@]}" "root@$(host_addr "$n")" systemctl is-system-running 2>/dev/null)" || true
			printf 'h%-4d %-15s %-12s nspawn pid %s\n' "$n" "$(host_addr "$n")" "${state:-no-ssh}" "$p"
			case "$state" in running | degraded) ;; *) bad=1 ;; esac
		else
			printf 'h%-4d %-15s %-12s\n' "$n" "$(host_addr "$n")" stopped
			bad=1
		fi
	done
	return "$bad"
}

cmd_ssh() {
	parse_lab_args "$@"
	[ -n "$ARG_HOST" ] || usage
	load_lab
	local n
	n="$(host_num "$ARG_HOST")"
	ssh_opts master
	exec ssh "${SSH_OPTS[@]}" "root@$(host_addr "$n")" "${REST[@]}"
}

cmd_list() {
	local l n up
	printf '%-20s %-5s %-5s %-18s %s\n' LAB HOSTS UP SUBNET STATE
	for l in "$RUN_DIR"/labs/*; do
		[ -L "$l" ] || continue
		LAB="$(basename "$l")"
		STATE="$(readlink "$l")"
		if [ ! -f "$STATE/lab.env" ]; then
			printf '%-20s %-5s %-5s %-18s %s (missing)\n' "$LAB" - - - "$STATE"
			continue
		fi
		(
			load_lab
			up=0
			for n in $(all_hosts); do host_pid "$n" >/dev/null && up=$((up + 1)); done
			printf '%-20s %-5s %-5s %-18s %s\n' "$LAB" "$HOSTS" "$up" \
				"${SUBNET:+$(net_prefix "$SUBNET").0/24}" "$STATE"
		)
	done
}

main() {
	[ $# -gt 0 ] || usage
	local cmd="$1"
	shift
	case "$cmd" in
	up) cmd_up "$@" ;;
	down) cmd_down "$@" ;;
	start-host) cmd_start_host "$@" ;;
	reboot-host) cmd_reboot_host "$@" ;;
	status) cmd_status "$@" ;;
	ssh) cmd_ssh "$@" ;;
	list) cmd_list ;;
	__launch) internal_launch "$@" ;;
	__nspawn) internal_nspawn "$@" ;;
	__nspawn_run) internal_nspawn_run "$@" ;;
	__build_step) internal_build_step "$@" ;;
	arm64-check) arm64_reason ;;
	rootfs-cached)
		if [ "${1:-}" = --arch ]; then ARCH="${2:-}"; fi
		rootfs_ok "$(rootfs_dir)"
		;;
	-h | --help | help) usage 0 ;;
	*) usage ;;
	esac
}

main "$@"
