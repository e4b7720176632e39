#!/usr/bin/env bash
# make test-rebuild: rebuild everything from the offline kit with no route out.
#
#   1. the demo pipeline on lab A (upstream, site.yml v1, builds of v2 and v3);
#   2. make collection, then the kit: docs/rebuild-without-internet.md's
#      "bundle" block (bundle.yml, then its verify mode); lab A destroyed;
#   3. lab B, fresh (its hosts have no route out), and a network namespace
#      joined only to lab B's bridge, where every controller step runs from
#      now on; an iptables counter there counts packets to anything but the lab;
#   4. bad kits, each refused by restore.yml naming the file, nothing restored;
#   5. the doc's block "apt" on a lab host (ansible-core from the kit's apt
#      repository), then "tools", "restore", "rebuild": each artifact's sha256
#      must equal the kit's manifest; "deploy", "flip" under load (0 failed
#      requests), "status".
# Prints: bench: rebuild kit_mb=N bundle_s=N restore_s=N rebuild_s=N identical=K/N outside_packets=N
#
# The doc's blocks are run as they are written, with KIT, INV, COLLECTIONS and
# INFRA set here: the page says exactly what the drill runs.
# KEEP=1 keeps lab B, the namespace and the work directory (its kit/ can be
# given as FROM_KIT=DIR to a later run, which then skips steps 1 and 2).
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
setup_for rebuild
cd "$REPO_ROOT"

DOC=docs/rebuild-without-internet.md
LAB_SH="$REPO_ROOT/tests/lab/lab.sh"
LAB_A="rba-$$"
LAB_B="rbb-$$"
NS="chzrb-$$"
VETH_HOST="rbh$$"
VETH_NS="rbn$$"
WORK="$REPO_ROOT/.build/rebuild"
LOGS="$REPO_ROOT/.build/rebuild-logs"
export KIT="$WORK/kit"
export COLLECTIONS="$WORK/collections"
export INFRA="$WORK/infra"
KEEP="${KEEP:-0}"

die() {
	printf 'test-rebuild: %s\n' "$*" >&2
	exit 1
}
say() { printf '\n=== %s\n' "$*"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# doc_block NAME: the shell block the doc marks <!-- rebuild-drill: NAME -->.
doc_block() {
	awk -v m="<!-- rebuild-drill: $1 -->" '
		$0 == m { want = 1; next }
		want && /^```sh$/ { on = 1; next }
		on && /^```$/ { exit }
		on { print }' "$DOC"
}
# run_block NAME LOG [in-ns]: runs the doc's block, in the namespace when asked.
run_block() {
	local name="$1" log="$2" where="${3:-}" block
	block="$(doc_block "$name")"
	[ -n "$block" ] || die "$DOC has no block marked rebuild-drill: $name"
	printf '%s\n' "$block" | sed 's/^/  | /'
	if [ "$where" = ns ]; then
		ip netns exec "$NS" bash -euo pipefail -c "$block" >"$log" 2>&1
	else
		bash -euo pipefail -c "$block" >"$log" 2>&1
	fi || {
		tail -n 30 "$log" >&2
		die "the doc's '$name' block failed (log: $log)"
	}
}

# --------------------------------------------------------------- cleanup ----
cleanup() {
	local rc=$?
	if [ "$KEEP" = 1 ]; then
		echo "kept: lab $LAB_B, netns $NS, $WORK"
	else
		"$LAB_SH" down --name "$LAB_A" >/dev/null 2>&1 || true
		"$LAB_SH" down --name "$LAB_B" >/dev/null 2>&1 || true
		if [ -e "/run/netns/$NS" ]; then ip netns del "$NS"; fi
		if ip link show "$VETH_HOST" >/dev/null 2>&1; then ip link del "$VETH_HOST"; fi
		rm -rf "$WORK" "/var/tmp/chezlepro-sovereign/$LAB_A" "/var/tmp/chezlepro-sovereign/$LAB_B"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" -eq 0 ] || die "must run as root (labs, network namespaces)"
rm -rf "$WORK" "$LOGS"
mkdir -p "$LOGS"
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_HOST_KEY_CHECKING=0

# lab_inventory LAB_INVENTORY DIR: one inventory directory, the lab's hosts
# (DIR/lab-hosts; an inventory directory ignores *.ini) beside inventories/lab's groups and vars.
lab_inventory() {
	mkdir -p "$2"
	cp "$1" "$2/lab-hosts"
}

tests/toolchain/archive.sh >/dev/null
make -s collection >"$LOGS/collection.log" 2>&1 || { tail "$LOGS/collection.log"; die "make collection failed"; }
CGO_ENABLED=0 go build -trimpath -o "$WORK/loadgen" ./tests/loadgen
# This checkout's playbooks and roles, until the kit's collection is installed.
export ANSIBLE_COLLECTIONS_PATH
ANSIBLE_COLLECTIONS_PATH="$(collection_path)"

if [ -n "${FROM_KIT:-}" ]; then
	# Debugging the restore side: start from a kit a KEEP=1 run left.
	say "1-2. skipped: the kit is a copy of $FROM_KIT"
	cp -a "$FROM_KIT" "$KIT"
	bundle_s=0
	kit_mb=$(du -sm "$KIT" | cut -f1)
else
	# ------------------------------------------------------- 1. lab A, online ----
	say "1. the demo pipeline on lab $LAB_A"
	inv_a="$("$LAB_SH" up --name "$LAB_A" --hosts 3 2>"$LOGS/lab-a.log" | tail -n1)" || die "lab A did not boot ($LOGS/lab-a.log)"
	INV="$WORK/inv-a"
	mkdir -p "$INV"
	cp -r inventories/lab/. "$INV/"
	lab_inventory "$inv_a" "$INV"
	export INV
	t=$(now)
	ansible-playbook -i "$INV" -e repo_root="$REPO_ROOT" tests/e2e/playbooks/pipeline/upstream.yml >"$LOGS/a-upstream.log" 2>&1 || die "upstream failed ($LOGS/a-upstream.log)"
	ansible-playbook -i "$INV" playbooks/site.yml -e webapp_version=v1 >"$LOGS/a-site.log" 2>&1 || die "site.yml failed ($LOGS/a-site.log)"
	for v in v2 v3; do
		ansible-playbook -i "$INV" playbooks/build.yml -e webapp_version=$v >"$LOGS/a-build-$v.log" 2>&1 || die "build $v failed ($LOGS/a-build-$v.log)"
	done
	echo "pipeline on lab A: $(secs "$t") s"

	# ------------------------------------------------------------- 2. the kit ----
	say "2. the kit (the doc's bundle block), then lab A destroyed"
	t=$(now)
	run_block bundle "$LOGS/bundle.log"
	bundle_s=$(secs "$t")
	kit_mb=$(du -sm "$KIT" | cut -f1)
	grep -q "all as the MANIFEST and KIT.json record" "$LOGS/bundle.log" || die "the kit's verify did not pass ($LOGS/bundle.log)"
	echo "kit: $kit_mb MB in $bundle_s s: $(find "$KIT" -type f | wc -l) files"
	"$LAB_SH" down --name "$LAB_A" >"$LOGS/lab-a-down.log" 2>&1
	rm -rf "/var/tmp/chezlepro-sovereign/$LAB_A" "$INV"
fi

# ---------------------------------------------- 3. lab B, no route out ----
say "3. lab $LAB_B, fresh; the controller's steps in netns $NS, joined only to its bridge"
inv_b="$("$LAB_SH" up --name "$LAB_B" --hosts 3 2>"$LOGS/lab-b.log" | tail -n1)" || die "lab B did not boot ($LOGS/lab-b.log)"
bridge="$(sed -n 's/^BRIDGE=//p' "$(dirname "$inv_b")/lab.env")"
subnet="$(sed -n 's/^lab_subnet=//p' "$inv_b")"
ip netns add "$NS"
ip link add "$VETH_HOST" type veth peer name "$VETH_NS"
ip link set "$VETH_NS" netns "$NS"
ip link set "$VETH_HOST" master "$bridge" up
ip -n "$NS" addr add "${subnet%.0/24}.250/24" dev "$VETH_NS"
ip -n "$NS" link set "$VETH_NS" up
ip -n "$NS" link set lo up
# Every packet the controller sends in the namespace: to the lab, to itself,
# or to anything else (the last counter must stay 0).
ip netns exec "$NS" iptables -A OUTPUT -o lo -j ACCEPT
ip netns exec "$NS" iptables -A OUTPUT -d "$subnet" -j ACCEPT
ip netns exec "$NS" iptables -A OUTPUT -j ACCEPT
counter() { ip netns exec "$NS" iptables -L OUTPUT -v -x -n | awk -v n="$1" 'NR > 2 { c++; if (c == n) print $1 }'; }
if ip netns exec "$NS" curl -s -m 5 -o /dev/null "$(sed -n 's/^deb \(http[^ ]*\).*/\1/p' /etc/apt/sources.list 2>/dev/null | head -n1)" 2>/dev/null ||
	ip netns exec "$NS" curl -s -m 5 -o /dev/null http://deb.debian.org/ 2>/dev/null; then
	die "the namespace $NS reaches outside"
fi
echo "no route out of $NS: $(ip netns exec "$NS" ip route get 1.1.1.1 2>&1 | head -n1)"
pkts_before=$(counter 3)
# ns_ssh HOST CMD: ssh to a lab B host from the namespace (lab.sh itself
# needs this machine's cgroup mounts, which ip netns exec hides).
ns_ssh() {
	local host="$1" addr
	shift
	addr="$(awk -v h="$host" '$1 == h { sub(/^ansible_host=/, "", $2); print $2 }' "$inv_b")"
	ip netns exec "$NS" ssh -q -i "$(dirname "$inv_b")/id_ed25519" -o IdentitiesOnly=yes -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes "root@$addr" "$@"
}

# ------------------------------------------------------- 4. bad kits ----
say "4. bad kits: each refused by restore.yml, naming the file; nothing restored"
# The restore playbook of this checkout, with its collection (the kit's own
# comes in step 5): refusals only, so nothing may change on lab B.
mkdir -p "$INFRA"
tar -C "$INFRA" -xzf "$KIT/inventory/lab.tar.gz"
lab_inventory "$inv_b" "$INFRA/lab"
export INV="$INFRA/lab"
# bad_kit NAME WANT SETUP: a copy of the kit altered by SETUP (run in it);
# restore.yml must fail with WANT in its output.
bad_kit() {
	local name="$1" want="$2" setup="$3" bad="$WORK/bad-$1" log="$LOGS/bad-$1.log"
	rm -rf "$bad"
	cp -a "$KIT" "$bad"
	(cd "$bad" && eval "$setup")
	if ip netns exec "$NS" ansible-playbook -i "$INV" playbooks/restore.yml -e offline_kit_dir="$bad" >"$log" 2>&1; then
		fail "bad kit ($name): restore.yml passed"
	elif grep -qE -- "$want" "$log"; then
		pass "bad kit ($name): refused, naming it: $(grep -oE -- "$want" "$log" | head -n1)"
	else
		fail "bad kit ($name): refused, but without /$want/ (log: $log)"
		grep -E '"msg"' "$log" | tail -n 3
	fi
	rm -rf "$bad"
}
reseal="python3 $REPO_ROOT/roles/offline_kit/files/kit.py seal ."
bad_kit missing "bad-missing/artifacts/webapp/v1/manifest.json: missing" "rm artifacts/webapp/v1/manifest.json"
bad_kit altered "bad-altered/mirrors/h1/webapp.git.bundle: altered" "printf x >>mirrors/h1/webapp.git.bundle"
bad_kit toolchain "bad-toolchain/toolchain/go[0-9.]+.linux-amd64.tar.gz: sha256 [0-9a-f]{64}, KIT.json records" \
	"printf x >>toolchain/*.tar.gz && sha256sum toolchain/*.tar.gz | sed 's,toolchain/,,' >\"\$(ls toolchain/*.tar.gz).sha256\" && $reseal"
bad_kit other-bundle "bad-other-bundle/mirrors/h1/webapp.git.bundle: its refs are not those KIT.json records for h1:/srv/git/webapp.git" \
	"cp collection/*.bundle mirrors/h1/webapp.git.bundle && $reseal"
# The forge already holds another repository where the kit's mirror goes.
# shellcheck disable=SC2016 # expanded on h1
ns_ssh h1 'set -e; d=$(mktemp -d); git -C $d init -q; git -C $d -c user.name=x -c user.email=x@x commit -q --allow-empty -m other;
	git clone -q --bare $d /srv/git/webapp.git; rm -rf $d'
bad_kit forge-other "is a bundle of another repository than h1:/srv/git/webapp.git" "true"
ns_ssh h1 'rm -rf /srv/git/webapp.git'
left="$(ns_ssh h1 'ls -d /srv/git/* /usr/local/lib/go /usr/local/go 2>/dev/null' || true)"
if [ -z "$left" ]; then pass "after the refusals, h1 has no mirror and no toolchain"; else fail "after the refusals, h1 has: $left"; fi

# ---------------------------------------------- 5. restore and rebuild ----
say "5. restore from the kit, rebuild, deploy, flip under load, status (the doc's blocks, in $NS)"
# The doc's apt block on h3 standing in for a fresh controller (this
# machine's own apt is not the test's to change), with the kit's apt/ there.
tar -C "$KIT/.." -cf - "$(basename "$KIT")/apt" | ns_ssh h3 'mkdir -p /srv && tar -C /srv -xf -'
if ns_ssh h3 "KIT=/srv/$(basename "$KIT"); set -euo pipefail; $(doc_block apt)" >"$LOGS/apt.log" 2>&1 &&
	grep -q '^ansible-playbook \[core 2' "$LOGS/apt.log"; then
	pass "the doc's apt block on h3 (no route out): ansible-core installed from the kit's apt repository"
else
	fail "the doc's apt block on h3 failed ($LOGS/apt.log)"
	tail -n 5 "$LOGS/apt.log"
fi
rm -rf "$INFRA"
run_block tools "$LOGS/tools.log" ns
lab_inventory "$inv_b" "$INFRA/lab"
# The doc's restore block exports it for the blocks after it.
export ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS"
t=$(now)
run_block restore "$LOGS/restore.log" ns
restore_s=$(secs "$t")
t=$(now)
run_block rebuild "$LOGS/rebuild.log" ns
rebuild_s=$(secs "$t")
# Every artifact of the kit rebuilt now (not found in a store) to the same sha256.
arts_b="/var/tmp/chezlepro-sovereign/$LAB_B/artifacts"
identical=0
total=0
while read -r rel want; do
	total=$((total + 1))
	got="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha256"])' "$arts_b/$rel" 2>/dev/null || echo none)"
	name_ver="${rel%/manifest.json}"
	if [ "$got" = "$want" ] && grep -q "${name_ver%%/*} ${name_ver#*/}: built (" "$LOGS/rebuild.log"; then
		identical=$((identical + 1))
		pass "rebuilt $name_ver: sha256 ${got:0:16}... as in the kit"
	else
		fail "rebuilt $name_ver: sha256 $got, the kit says $want (or not built now: $LOGS/rebuild.log)"
	fi
done < <(python3 -c 'import json,sys
for a in json.load(open(sys.argv[1]))["artifacts"]: print(a["manifest"][len("artifacts/"):], a["sha256"])' "$KIT/KIT.json")

run_block deploy "$LOGS/deploy.log" ns
ns_ssh h1 'cat >/usr/local/bin/loadgen && chmod 0755 /usr/local/bin/loadgen' <"$WORK/loadgen"
ns_ssh h1 systemd-run --unit=rebuild-load --collect --quiet /usr/local/bin/loadgen \
	-target http://h2:8080/ -target http://h3:8080/ -rate 150 -concurrency 8 -out /var/tmp/rebuild-load.json
sleep 2
run_block flip "$LOGS/flip.log" ns
sleep 1
ns_ssh h1 'systemctl stop rebuild-load.service && cat /var/tmp/rebuild-load.json' >"$WORK/load.json"
read -r sent failed < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["sent"], r["failed"])' "$WORK/load.json")
if [ "$failed" -eq 0 ] && [ "$sent" -gt 0 ]; then pass "flip to v2 under load: $sent requests, 0 failed"; else fail "flip to v2 under load: $failed of $sent requests failed"; fi
run_block status "$LOGS/status.log" ns
if [ "$(grep -c 'webapp: active green (v2), previous blue' "$LOGS/status.log")" -eq 2 ]; then
	pass "status: v2 active on green on both app hosts"
else
	fail "status does not show v2 active on green on both app hosts ($LOGS/status.log)"
fi

pkts_lab=$(counter 2)
outside=$(($(counter 3) - pkts_before))
if [ "$outside" -eq 0 ] && [ "$pkts_lab" -gt 0 ]; then
	pass "the controller sent $pkts_lab packets to the lab and $outside anywhere else"
else
	fail "the controller sent $outside packets outside the lab ($pkts_lab to it)"
fi
echo "bench: rebuild kit_mb=$kit_mb bundle_s=$bundle_s restore_s=$restore_s rebuild_s=$rebuild_s identical=$identical/$total outside_packets=$outside"
if [ "$identical" -ne "$total" ] || [ "$total" -eq 0 ]; then fail "identical=$identical/$total"; fi
summary
