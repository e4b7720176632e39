#!/usr/bin/env bash
# The tarball must install with no network and work from the installed copy:
# both platforms' binaries inside, executable, and an ad-hoc call by FQCN
# reaching the right binary through the dispatch.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
setup_for check
tarball="$1"; shift
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if ansible-galaxy collection install --offline -p "$work/collections" "$tarball" >"$work/install.log" 2>&1; then
	pass "offline install of $(basename "$tarball")"
else
	fail "offline install: $(cat "$work/install.log")"
	summary
	exit 1
fi
installed="$work/collections/ansible_collections/chezlepro/sovereign"

# adhoc MODULE ARGS: an ad-hoc call of the installed module on this machine.
adhoc() {
	(cd "$work" || exit 1; ANSIBLE_COLLECTIONS_PATH="$work/collections" ANSIBLE_HOME="$work/home" \
		ansible localhost -c local -e "chezlepro_sovereign_module_cache=$work/cache" \
		-m "chezlepro.sovereign.$1" -a "$2" 2>&1 || true)
}
# Per module: arguments the controller accepts and its binary refuses, and
# the message only the binary gives (binary_stage's binary is proven by the
# real call at the end).
declare -A refusal=(
	[bluegreen_unit]="name=bad..name state=query|is not a valid service name"
	[source_build]="repo=/srv/git/none.git version=v1 dest=relative|dest must be an absolute path"
)

# An unknown option is refused on the controller against the installed
# sidecar, before any binary runs (the same code for every module).
out="$(adhoc binary_stage 'bogus_option=1')"
if grep -q "Unsupported parameters for (binary_stage) module: bogus_option" <<<"$out"; then
	pass "ad-hoc chezlepro.sovereign.binary_stage from the installed copy refuses an unknown option on the controller"
else
	fail "ad-hoc chezlepro.sovereign.binary_stage from the installed copy, unknown option: $out"
fi

for m in "$@"; do
	for p in "linux_amd64:X86-64" "linux_arm64:AArch64"; do
		bin="$installed/bin/${m}_${p%%:*}"
		machine="$(LC_ALL=C readelf -h "$bin" 2>/dev/null | sed -n 's/ *Machine: *//p' || true)"
		if [ -x "$bin" ] && [[ "$machine" == *"${p##*:}" ]]; then
			pass "$m ${p%%:*} binary installed, executable, ELF machine: $machine"
		else
			fail "$m ${p%%:*}: want an executable ${p##*:} binary at $bin, found machine '${machine:-none}'"
		fi
	done
	# Valid arguments the module refuses: the answer must come from the Go
	# binary, proving dispatch found and ran it.
	[ -n "${refusal[$m]:-}" ] || continue
	out="$(adhoc "$m" "${refusal[$m]%%|*}")"
	if grep -qF "${refusal[$m]#*|}" <<<"$out"; then
		pass "ad-hoc chezlepro.sovereign.$m from the installed copy answers from its binary"
	else
		fail "ad-hoc chezlepro.sovereign.$m from the installed copy: want '${refusal[$m]#*|}' from the binary, got: $out"
	fi
done

# bin/SHA256SUMS travels with the binaries and names each one's sha256 (the
# install gives the files new mtimes, so the plugin hashes them there).
sums_wrong=""
for bin in "$installed"/bin/*_linux_*; do
	want="$(awk -v n="$(basename "$bin")" '$4 == n {print $1}' "$installed/bin/SHA256SUMS" 2>/dev/null || true)"
	[ "$want" = "$(sha256sum <"$bin" | cut -d' ' -f1)" ] || sums_wrong+=" $(basename "$bin") (SHA256SUMS says '${want:-nothing}')"
done
if [ -z "$sums_wrong" ]; then
	pass "bin/SHA256SUMS in the installed copy names the sha256 of each binary"
else
	fail "bin/SHA256SUMS in the installed copy is wrong for:$sums_wrong"
fi

# And a real call from the installed copy: stage a binary on this machine.
out="$(cd "$work" || exit 1; ANSIBLE_COLLECTIONS_PATH="$work/collections" ANSIBLE_HOME="$work/home" \
	ansible localhost -c local -e "chezlepro_sovereign_module_cache=$work/cache" -m chezlepro.sovereign.binary_stage \
	-a "src=/bin/true version=1.0 root=$work/opt slot=blue" 2>&1 || true)"
if grep -q 'CHANGED' <<<"$out" && [ "$(readlink -f "$work/opt/blue/true")" != "" ] && cmp -s /bin/true "$work/opt/blue/true"; then
	pass "ad-hoc binary_stage from the installed copy staged /bin/true into $work/opt/blue"
else
	fail "ad-hoc binary_stage from the installed copy: $out"
fi

# ansible-doc sees the three modules and nothing else: the binaries live in
# bin/, where it does not take them for modules (in plugins/modules/, 2.14
# warned about each and --metadata-dump exited 1).
modules_listed="$(printf 'chezlepro.sovereign.%s\n' "$@" | sort)"
if out="$(ANSIBLE_COLLECTIONS_PATH="$work/collections" ANSIBLE_HOME="$work/home" ansible-doc -l chezlepro.sovereign 2>&1)" &&
	! grep -qi 'warning' <<<"$out" && [ "$(awk '{print $1}' <<<"$out" | sort)" = "$modules_listed" ]; then
	pass "ansible-doc -l chezlepro.sovereign lists the $# modules, no warning"
else
	fail "ansible-doc -l chezlepro.sovereign (want exactly the $# modules, no warning): $out"
fi
if ANSIBLE_COLLECTIONS_PATH="$work/collections" ANSIBLE_HOME="$work/home" \
	ansible-doc --metadata-dump chezlepro.sovereign >"$work/metadata.json" 2>"$work/metadata.err" &&
	[ "$(python3 -c 'import json, sys; print("\n".join(sorted(json.load(sys.stdin)["all"]["module"])))' <"$work/metadata.json")" = "$modules_listed" ]; then
	pass "ansible-doc --metadata-dump chezlepro.sovereign exits 0 with the $# modules"
else
	fail "ansible-doc --metadata-dump chezlepro.sovereign: $(cat "$work/metadata.err")"
fi
summary
