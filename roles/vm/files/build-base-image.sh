#!/usr/bin/env bash
# Build a Debian qcow2 base image offline-capable: debootstrap from the apt
# mirror this machine already uses, then an ext4 filesystem image made with
# mkfs.ext4 -d (no loop device, no partition table, no bootloader: the VMs
# boot the kernel and initrd copied next to the image, by libvirt's direct
# kernel boot).
#
# Usage: build-base-image.sh --dest DIR [--suite bookworm] [--mirror URI]
#                            [--size 3G] [--include pkg1,pkg2]
#
# DIR receives disk.qcow2, vmlinuz, initrd.img, the build logs and, last, the
# stamp file "built" (its content: the build parameters). With the stamp present the
# script does nothing. The build happens in DIR.tmp.* and is renamed into place,
# so an interrupted build never leaves a half image behind a stamp.
set -euo pipefail

dest=""
suite="bookworm"
mirror=""
size="3G"
include=""
while [ $# -gt 0 ]; do
	case "$1" in
	--dest) dest="$2"; shift 2 ;;
	--suite) suite="$2"; shift 2 ;;
	--mirror) mirror="$2"; shift 2 ;;
	--size) size="$2"; shift 2 ;;
	--include) include="$2"; shift 2 ;;
	*) echo "build-base-image: unknown argument: $1" >&2; exit 2 ;;
	esac
done
[ -n "$dest" ] || { echo "build-base-image: --dest is required" >&2; exit 2; }
case "$dest" in /*) ;; *) echo "build-base-image: --dest must be absolute" >&2; exit 2 ;; esac

if [ -f "$dest/built" ]; then
	echo "build-base-image: $dest is already built"
	exit 0
fi

log() { printf 'build-base-image: %s\n' "$*" >&2; }

# mirror_from_apt prints the first Debian mirror URI configured on this
# machine (deb822 .sources or one-line .list), skipping the security archive.
mirror_from_apt() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v suite="$suite" '
			BEGIN { RS=""; FS="\n" }
			{
				uris=""; suites=""; types=""
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^URIs:/)   { uris = $i;   sub(/^URIs:[ \t]*/, "", uris) }
					if ($i ~ /^Suites:/) { suites = " " $i " " }
					if ($i ~ /^Types:/)  { types = $i }
				}
				if (types ~ /[ \t]deb([ \t]|$)/ && suites ~ ("[ \t]" suite "[ \t]")) {
					split(uris, u, /[ \t]+/); print u[1]; exit
				}
			}' "$f"
	done
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk -v suite="$suite" '$1 == "deb" && $0 !~ /\[/ && $3 == suite { print $2 }
			$1 == "deb" && $2 ~ /^\[/ { for (i = 2; i <= NF; i++) if ($i ~ /\]$/) { if ($(i+2) == suite) print $(i+1); break } }'
	return 0
}

if [ -z "$mirror" ]; then
	mirror="$(mirror_from_apt | head -n1)"
	[ -n "$mirror" ] || { log "no apt mirror for $suite found in /etc/apt; pass --mirror"; exit 1; }
fi

for tool in debootstrap mkfs.ext4 qemu-img; do
	command -v "$tool" >/dev/null || { log "missing $tool (apt-get install debootstrap e2fsprogs qemu-utils)"; exit 1; }
done

# debootstrap installs a minimal systemd system; apt in the chroot then adds
# the rest with its full dependency resolver (debootstrap's own resolver fails
# on a package set as large as cloud-init's).
base_packages="systemd,systemd-sysv,dbus,libpam-systemd,iproute2,ca-certificates,netbase"
# What a VM needs to be provisioned and managed: kernel and initramfs, sshd,
# cloud-init (NoCloud seed), python3 for Ansible, sudo, resize2fs.
packages=(linux-image-amd64 initramfs-tools openssh-server cloud-init python3 sudo e2fsprogs)
if [ -n "$include" ]; then
	IFS=, read -r -a extra <<<"$include"
	packages+=("${extra[@]}")
fi

mkdir -p "$(dirname "$dest")"
work="$(mktemp -d "$dest.tmp.XXXXXX")"
# qemu runs as libvirt-qemu and must reach the image through this directory.
chmod 0755 "$work"
root="$work/root"
cleanup() {
	local m
	# Unmount anything left mounted inside the chroot, deepest first.
	awk -v r="$root" '$2 ~ "^"r { print $2 }' /proc/mounts | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null || true
	done
	# --one-file-system: should an unmount have failed, never recurse into the
	# host's /dev, /proc or /sys bound into the chroot.
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT

start=$SECONDS
log "debootstrap $suite from $mirror"
if ! debootstrap --variant=minbase --include="$base_packages" "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
	# Keep debootstrap's own detailed log: the temporary tree is removed on exit.
	cat "$work/debootstrap.log" "$root/debootstrap/debootstrap.log" >"$dest.failed.log" 2>/dev/null || true
	tail -n 20 "$work/debootstrap.log" >&2
	log "debootstrap failed; full log in $dest.failed.log"
	exit 1
fi
rm -f "$dest.failed.log"
log "debootstrap done in $((SECONDS - start)) s"

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }

# No service may start inside the chroot while packages install.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
# A small initramfs: only what mounts the root disk of a libvirt VM. Written
# before the kernel is installed so that the initrd is generated once, small:
# decompressing a 36 MB "most" initrd costs seconds of emulated CPU under TCG.
mkdir -p "$root/etc/initramfs-tools/conf.d"
printf 'MODULES=list\n' >"$root/etc/initramfs-tools/conf.d/chezlepro-vm.conf"
mkdir -p "$root/usr/share/initramfs-tools/modules.d"
printf '%s\n' virtio_pci virtio_blk virtio_scsi sd_mod ext4 >"$root/usr/share/initramfs-tools/modules.d/chezlepro-vm"
cp /etc/resolv.conf "$root/etc/resolv.conf"
if ! { in_root apt-get update -q && in_root apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-unsafe-io "${packages[@]}"; } >"$work/apt.log" 2>&1; then
	cp "$work/apt.log" "$dest.failed.log"
	tail -n 20 "$work/apt.log" >&2
	log "apt-get install in the image failed; full log in $dest.failed.log"
	exit 1
fi
umount "$root/dev/pts" "$root/dev" "$root/sys" "$root/proc"
rm -f "$root/usr/sbin/policy-rc.d"
log "packages installed at $((SECONDS - start)) s"

# --- configure the root filesystem -------------------------------------------

cat >"$root/etc/fstab" <<FSTAB
# The root filesystem is the whole virtual disk (no partition table).
/dev/vda  /  ext4  defaults,errors=remount-ro  0  1
FSTAB

cat >"$root/etc/apt/sources.list" <<APT
deb $mirror $suite main
APT

# Every VM gets its own identity on first boot.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_*
echo localhost >"$root/etc/hostname"

# cloud-init: only the NoCloud seed (no network metadata service is probed,
# which would wait for minutes offline), networkd renders the static address.
cat >"$root/etc/cloud/cloud.cfg.d/90-chezlepro.cfg" <<CLOUD
datasource_list: [NoCloud, None]
system_info:
  network:
    renderers: [networkd]
# Only the modules the VM role's seed uses: every module is Python run on the
# boot's critical path, slow under software emulation (locale, apt, ntp... off).
cloud_init_modules: [seed_random, bootcmd, write-files, resizefs, set_hostname, update_hostname,
  update_etc_hosts, users-groups, ssh]
cloud_config_modules: [runcmd]
cloud_final_modules: [scripts-per-once, scripts-per-boot, scripts-per-instance, scripts-user,
  final-message]
CLOUD

# sshd: keys only, no DNS lookups of clients (offline).
cat >"$root/etc/ssh/sshd_config.d/chezlepro.conf" <<SSHD
PasswordAuthentication no
UseDNS no
SSHD

in_root systemctl enable systemd-networkd.service >/dev/null 2>&1
# Periodic jobs that would compete with deployments on a fresh VM.
for timer in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer dpkg-db-backup.timer; do
	in_root systemctl disable "$timer" >/dev/null 2>&1 || true
	in_root systemctl mask "$timer" >/dev/null 2>&1 || true
done

in_root apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/tmp/* "$root"/var/log/*.log "$root/etc/resolv.conf"

# --- kernel and initrd for direct kernel boot ---------------------------------
kernel="$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n1)"
initrd="$(find "$root/boot" -maxdepth 1 -name 'initrd.img-*' | sort -V | tail -n1)"
if [ -z "$kernel" ] || [ -z "$initrd" ]; then
	log "no kernel or initrd in $root/boot"
	exit 1
fi
cp "$kernel" "$work/vmlinuz"
cp "$initrd" "$work/initrd.img"
kver="${kernel##*/vmlinuz-}"

# --- filesystem image ----------------------------------------------------------
log "mkfs.ext4 -d ($size)"
mkfs.ext4 -q -F -L root -d "$root" "$work/disk.raw" "$size" >/dev/null
qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$work/disk.qcow2"
rm -f "$work/disk.raw"
rm -rf "$root"
chmod 0644 "$work/disk.qcow2" "$work/vmlinuz" "$work/initrd.img"

cat >"$work/built" <<STAMP
suite=$suite
mirror=$mirror
kernel=$kver
packages=$base_packages ${packages[*]}
size=$size
built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
build_seconds=$((SECONDS - start))
STAMP
# debootstrap.log and apt.log stay beside the image: what was installed, and how.

rm -rf "$dest"
mv "$work" "$dest"
trap - EXIT
log "built $dest in $((SECONDS - start)) s (kernel $kver)"
