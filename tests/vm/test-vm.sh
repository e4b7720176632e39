#!/usr/bin/env bash
# End-to-end VM test on this machine as a local libvirt hypervisor:
#   base image (built once, cached) -> playbooks/provision.yml creates one VM
#   -> ssh with the pinned host key -> one run of provision.yml (must change
#   nothing) followed by a blue/green deploy of the demo service into the VM
#   with the collection, and a flip -> state=absent in check mode (changes
#   nothing) then for real: domain, disk and seed gone (second run: no change).
# Prints the timing of each phase and "N passed, N failed"; exits non-zero on
# failure. Cleans up whatever it created on any exit, including Ctrl-C.
#
#   tests/vm/test-vm.sh [--keep]     (--keep: leave the VM running for a look)
#
# Addresses: an isolated libvirt network on a free /24 of 198.19.0.0/16 (RFC
# 2544 range; the first free from 198.19.77.0, or VMTEST_SUBNET=N for
# 198.19.N.0/24), no NAT, no route anywhere else. Needs root and Debian 12.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$REPO_ROOT"

keep=false
[ "${1:-}" != "--keep" ] || keep=true

# Names of its own per run, so a CI job and a developer's run on one
# hypervisor never collide.
vm_name="cz-vmtest-$$"
net_name="czvm$$"
uri="qemu:///system"
storage_dir="/var/lib/chezlepro-vm"
image_dir="/var/cache/chezlepro-vm/debian12"
logs="$REPO_ROOT/.build/test-vm"
mkdir -p "$logs"
# Logs of an earlier run would be read as this run's.
rm -f "$logs"/*.log
work="$(mktemp -d /tmp/chezlepro-vmtest.XXXXXX)"

started_daemons=()
# Set once this run knows the domain and network names are not taken: until
# then the cleanup leaves them alone (they belong to someone else).
own_names=false
# The role gives /dev/kvm to group kvm, mode 0660, as udev does on Debian (see
# roles/vm/tasks/accel.yml); a machine without udev gets its own back at the end.
kvm_perms="$(stat -c '%g %a' /dev/kvm 2>/dev/null || true)"

now_ms() { date +%s%3N; }
test_start=$(now_ms)
secs_since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }
timing() { printf 'timing: %-22s %7s s\n' "$1" "$2"; }

# --- cleanup: only what this run created ----------------------------------
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	# An interrupted ansible-playbook: its whole process group (workers, and
	# the virsh or qemu-img they run) ends before anything is removed, or a
	# worker could define the domain after the cleanup looked for it.
	if [ -n "${child:-}" ]; then
		stop_group "$child"
		wait "$child" 2>/dev/null || true
	fi
	if $keep && [ "$rc" -eq 0 ]; then
		echo "kept: VM $vm_name ($vm_ip), network $net_name; inventory $work/inventory.yml"
		return
	fi
	if $own_names; then
		if virsh -c "$uri" dominfo "$vm_name" >/dev/null 2>&1; then
			virsh -c "$uri" destroy "$vm_name" >/dev/null 2>&1 || true
			virsh -c "$uri" undefine "$vm_name" >/dev/null 2>&1 || true
		fi
		rm -rf "${storage_dir:?}/$vm_name"
		if virsh -c "$uri" net-info "$net_name" >/dev/null 2>&1; then
			virsh -c "$uri" net-destroy "$net_name" >/dev/null 2>&1 || true
			virsh -c "$uri" net-undefine "$net_name" >/dev/null 2>&1 || true
		fi
		rm -f "$storage_dir/network-$net_name.xml"
	fi
	if [ -n "$kvm_perms" ]; then
		chgrp "${kvm_perms% *}" /dev/kvm 2>/dev/null || true
		chmod "${kvm_perms#* }" /dev/kvm 2>/dev/null || true
	fi
	# The daemons this run started stop again, unless domains of someone else
	# run on them (another run on this machine started meanwhile).
	local i pid others
	if [ ${#started_daemons[@]} -gt 0 ]; then
		others="$(virsh -c "$uri" list --name 2>/dev/null | grep -v -x -e '' -e "$vm_name" || true)"
		if [ -n "$others" ]; then
			echo "left libvirtd and virtlogd running: other domains run on them: $(echo "$others" | tr '\n' ' ')"
		else
			for ((i = ${#started_daemons[@]} - 1; i >= 0; i--)); do
				pid="${started_daemons[$i]}"
				kill "$pid" 2>/dev/null || true
			done
		fi
	fi
	rm -rf "$work"
	exit "$rc"
}
# stop_group PGID: SIGTERM to a process group, SIGKILL after 30 s; returns
# once no live process of it is left (zombies do not count).
# (/proc rather than ps: procps is not on every minimal Debian.)
group_alive() {
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } |
		awk -v g="$1" '{ sub(/.*\) /, "") } $3 == g && $1 != "Z" { f = 1 } END { exit !f }'
}
stop_group() {
	local g="$1" i
	kill -TERM -- "-$g" 2>/dev/null || return 0
	for i in $(seq 300); do
		group_alive "$g" || return 0
		[ "$i" -ne 300 ] || kill -KILL -- "-$g" 2>/dev/null || true
		sleep 0.1
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- packages ------------------------------------------------------------------
setup_for vm

# --- libvirt daemons: started by hand when systemd is not PID 1 ----------------
# start_daemon NAME: starts it daemonized unless it runs; remembers its PID.
start_daemon() {
	local name="$1" pidfile="/run/$1.pid" pid
	if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		return 0
	fi
	"$name" -d
	for _ in $(seq 50); do
		[ -f "$pidfile" ] && pid="$(cat "$pidfile")" && kill -0 "$pid" 2>/dev/null && break
		sleep 0.1
	done
	[ -n "${pid:-}" ] || { echo "could not start $name" >&2; return 1; }
	started_daemons+=("$pid")
	echo "started $name (pid $pid)"
}
if ! virsh -c "$uri" version >/dev/null 2>&1; then
	if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
		systemctl start virtlogd.socket libvirtd.socket libvirtd.service
	else
		start_daemon virtlogd
		start_daemon libvirtd
	fi
	for _ in $(seq 50); do virsh -c "$uri" version >/dev/null 2>&1 && break; sleep 0.2; done
fi
virsh -c "$uri" version >/dev/null || { echo "libvirt is not reachable at $uri" >&2; exit 1; }
# A domain or network of these names (a --keep run whose PID was this one)
# is not this run's: refuse, and leave it alone.
if virsh -c "$uri" dominfo "$vm_name" >/dev/null 2>&1 || [ -e "$storage_dir/$vm_name" ]; then
	echo "a domain $vm_name already exists: remove it first (virsh destroy/undefine $vm_name; rm -r $storage_dir/$vm_name)" >&2
	exit 1
fi
if virsh -c "$uri" net-info "$net_name" >/dev/null 2>&1; then
	echo "a libvirt network $net_name already exists: remove it first (virsh net-destroy/net-undefine $net_name)" >&2
	exit 1
fi
own_names=true

# --- a free /24 for the VM network (same test as tests/lab/lab.sh) --------------
subnet_free() {
	[ -z "$(ip -4 -o addr show to "198.19.$1.0/24")" ] &&
		[ -z "$(ip -4 route show table all root "198.19.$1.0/24")" ]
}
if [ -n "${VMTEST_SUBNET:-}" ]; then
	subnet="$VMTEST_SUBNET"
	subnet_free "$subnet" || { echo "198.19.$subnet.0/24 is in use" >&2; exit 1; }
else
	subnet=""
	for i in $(seq 77 254) $(seq 1 76); do
		if subnet_free "$i"; then subnet="$i"; break; fi
	done
	[ -n "$subnet" ] || { echo "no free /24 in 198.19.0.0/16" >&2; exit 1; }
fi
vm_ip="198.19.$subnet.10"

# --- inventory: this machine is the hypervisor -----------------------------------
ssh-keygen -q -t ed25519 -N "" -C chezlepro-vmtest -f "$work/id_ed25519"
cat >"$work/inventory.yml" <<EOF
all:
  children:
    hypervisors:
      hosts:
        hv-local:
          ansible_connection: local
          ansible_python_interpreter: /usr/bin/python3
          vm_install_packages: false
          vm_storage_dir: $storage_dir
          vm_network: $net_name
          vm_network_bridge: czvm$$b
          vm_network_host_address: 198.19.$subnet.1/24
          vm_admin_ssh_keys: ["$(cat "$work/id_ed25519.pub")"]
          vm_ssh_private_key_file: $work/id_ed25519
          vm_known_hosts_file: $work/known_hosts
    # The VM is an inventory host, as in inventories/example/vms.yml.
    vms:
      children:
        webapp:
          hosts:
            $vm_name:
              vm_hypervisor: hv-local
              vm_spec:
                address: $vm_ip/24
                state: "{{ vmtest_state | default('running') }}"
                vcpus: 2
                memory_mib: 1024
                disk_gib: "{{ vmtest_disk_gib | default(6) }}"
EOF

ANSIBLE_COLLECTIONS_PATH="$(collection_path)"
# Pipelining: one ssh round trip per task into the VM (no temporary files),
# which counts under software emulation.
export ANSIBLE_COLLECTIONS_PATH ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_PIPELINING=1
# Ansible's temporary files (module payloads, its local temp) in this run's
# directory: an interrupted run leaves none behind in /tmp or ~/.ansible.
mkdir -p "$work/tmp"
export TMPDIR="$work/tmp" ANSIBLE_LOCAL_TEMP="$work/tmp/ansible-local"

# play NAME ARGS...: runs ansible-playbook, output to $logs/NAME.log.
# In the background with wait: a signal interrupts wait at once, where bash
# would run the trap only after a foreground ansible-playbook finished.
child=""
play() {
	local name="$1" rc=0
	shift
	# setsid: a process group of its own, for the cleanup to stop as a whole.
	setsid ansible-playbook -i "$work/inventory.yml" "$@" >"$logs/$name.log" 2>&1 &
	child=$!
	wait "$child" || rc=$?
	child=""
	return "$rc"
}
# recap_changed NAME: prints the total of changed= in the log's PLAY RECAP.
recap_changed() {
	awk '/PLAY RECAP/ { r = 1; next } r && /changed=/ { for (i = 1; i <= NF; i++) if ($i ~ /^changed=/) { split($i, a, "="); s += a[2] } } END { print s + 0 }' "$logs/$1.log"
}
show_failure() {
	grep -E '^(fatal|failed|TASK|ERROR)|"msg"' "$logs/$1.log" | tail -n 12 | sed 's/^/      /'
	if [ -f "$storage_dir/$vm_name/console.log" ]; then
		echo "      --- last console lines of $vm_name:"
		tail -n 15 "$storage_dir/$vm_name/console.log" | sed 's/^/      /'
	fi
}
vm_ssh() {
	ssh -i "$work/id_ed25519" -o UserKnownHostsFile="$work/known_hosts" -o StrictHostKeyChecking=yes \
		-o BatchMode=yes -o ConnectTimeout=10 "admin@$vm_ip" "$@"
}

# --- 1. base image -----------------------------------------------------------
t0=$(now_ms)
if [ -f "$image_dir/built" ]; then image_kind=cached; else image_kind=cold; fi
if play image "$REPO_ROOT/playbooks/vm_base_image.yml" && [ -f "$image_dir/built" ]; then
	pass "base image ($image_kind): $(grep -E '^(kernel|build_seconds)=' "$image_dir/built" | tr '\n' ' ')"
else
	fail "base image: see $logs/image.log"
	show_failure image
	summary || true
	exit 1
fi
timing "image build ($image_kind)" "$(secs_since "$t0")"

# --- 2. create the VM, boot to ssh ---------------------------------------------
t0=$(now_ms)
if play create "$REPO_ROOT/playbooks/provision.yml"; then
	boot_s="$(secs_since "$t0")"
	pass "provision.yml created and booted $vm_name ($(grep -o 'use [A-Z][A-Za-z ()-]*:' "$logs/create.log" | head -n1 | sed 's/:$//'))"
else
	boot_s="$(secs_since "$t0")"
	fail "provision.yml create: see $logs/create.log"
	show_failure create
	summary || true
	exit 1
fi
timing "provision (create)" "$boot_s"
# The role reports how long ssh took to answer once the domain was started.
boot_wait="$(grep -m1 -o 'answers ssh on [0-9.]* after [0-9]* s' "$logs/create.log" || true)"
boot_wait="${boot_wait##* after }"
boot_wait="${boot_wait% s}"
timing "VM boot to ssh" "${boot_wait:-?}"

state="$(virsh -c "$uri" domstate "$vm_name" 2>&1 || true)"
state="${state%%$'\n'*}"
if [ "$state" = running ]; then pass "domain $vm_name is running"; else fail "domain $vm_name state: $state"; fi
info="$(virsh -c "$uri" dominfo "$vm_name" 2>&1 || true)"
if grep -Eq 'Autostart:\s+enable' <<<"$info"; then
	pass "autostart is enabled"
else
	fail "autostart is not enabled: $info"
fi
dumpxml="$(virsh -c "$uri" dumpxml "$vm_name" 2>&1 || true)"
if grep -q "<domain type='qemu'" <<<"$dumpxml"; then
	# TCG: the qemu process must run one TCG thread per vCPU (multi-threaded TCG).
	pid="$(cat "/run/libvirt/qemu/$vm_name.pid" 2>/dev/null || true)"
	threads="$(cat /proc/"${pid:-0}"/task/*/comm 2>/dev/null | grep -c '^CPU [0-9]*/TCG$' || true)"
	if [ "$threads" -eq 2 ]; then pass "multi-threaded TCG: 2 vCPU threads"; else fail "TCG vCPU threads: ${threads:-none} (want 2)"; fi
	if grep -q "<tb-cache unit='KiB'>262144</tb-cache>" <<<"$dumpxml"; then pass "TCG tb-cache 256 MiB"; else fail "no tb-cache in the domain"; fi
elif grep -q "<domain type='kvm'" <<<"$dumpxml"; then
	pass "domain type kvm"
	skip "TCG vCPU threads and tb-cache: this VM runs on KVM"
else
	fail "domain type unknown: $(head -n1 <<<"$dumpxml")"
fi
disk_info="$(qemu-img info -U "$storage_dir/$vm_name/disk.qcow2" 2>&1 || true)"
if grep -q "backing file: $image_dir/disk.qcow2" <<<"$disk_info"; then
	pass "disk is a qcow2 overlay on the base image"
else
	fail "disk is not an overlay on $image_dir/disk.qcow2"
fi

# --- 3. ssh with the pinned host key; cloud-init results -------------------------
if out="$(vm_ssh 'hostname; ip -4 -o addr show; df -B1G --output=size / | tail -n1; sudo -n true && echo sudo-ok; cloud-init status --long || true' 2>&1)"; then
	pass "ssh as admin with the pinned host key (StrictHostKeyChecking=yes)"
	if grep -qx "$vm_name" <<<"$out"; then pass "hostname is $vm_name"; else fail "hostname: $out"; fi
	if grep -q "inet $vm_ip/24" <<<"$out"; then pass "static address $vm_ip/24"; else fail "address: $out"; fi
	size="$(grep -Ex ' *[0-9]+G?' <<<"$out" | head -n1 | tr -dc '0-9')"
	if [ "${size:-0}" -ge 5 ]; then pass "root filesystem grown to the disk size (${size} GiB of 6)"; else fail "root filesystem is ${size:-?} GiB, expected about 6"; fi
	if grep -qx sudo-ok <<<"$out"; then pass "passwordless sudo"; else fail "sudo: $out"; fi
	if grep -q 'status: done' <<<"$out"; then pass "cloud-init finished without error"; else fail "cloud-init: $out"; fi
else
	fail "ssh to $vm_ip: $out"
fi

# --- 4. deploy blue/green into the VM, then flip ---------------------------------
# One ansible-playbook run: provision.yml again, which must change nothing
# (the idempotence check) and adds the VM to the in-memory inventory, then the
# deploy and flip plays into that VM.
build_ok=true
if [ -d vendor ]; then
	make build >"$logs/build.log" 2>&1 || build_ok=false
else
	# No vendor/ yet: build the one module used here from the module cache.
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o bin/bluegreen_unit_linux_amd64 \
		./modules/bluegreen_unit >"$logs/build.log" 2>&1 || build_ok=false
fi
if ! $build_ok; then
	fail "building the modules: see $logs/build.log"
	tail -n 5 "$logs/build.log" | sed 's/^/      /'
elif play deploy "$REPO_ROOT/tests/vm/deploy.yml"; then
	pass "blue/green deploy of the demo web app into $vm_name: blue 1.0 answered, flip to green 2.0 answered"
	t="$(grep -o 'vmtest-timing deploy_ms=[0-9]* flip_ms=[0-9]*' "$logs/deploy.log" | head -n1 || true)"
	deploy_ms="$(sed -n 's/.*deploy_ms=\([0-9]*\).*/\1/p' <<<"$t")"
	flip_ms="$(sed -n 's/.*flip_ms=\([0-9]*\).*/\1/p' <<<"$t")"
	timing "deploy (blue)" "$(awk -v m="${deploy_ms:-0}" 'BEGIN { printf "%.1f", m / 1000 }')"
	timing "flip (to green)" "$(awk -v m="${flip_ms:-0}" 'BEGIN { printf "%.1f", m / 1000 }')"
	provision_changes="$(awk '/^PLAY \[/ { p = ($0 ~ /Converge the VMs|Wait until every running VM/) } p && /^changed:/ { n++ } END { print n + 0 }' "$logs/deploy.log")"
	if [ "$provision_changes" -eq 0 ]; then
		pass "second provision.yml run (inside the deploy run): changed=0"
	else
		fail "second provision.yml run (inside the deploy run) changed $provision_changes things:"
		awk '/^PLAY \[/ { p = ($0 ~ /Converge the VMs|Wait until every running VM/) } p && /^TASK/ { t = $0 } p && /^changed:/ { print t }' "$logs/deploy.log" | sed 's/^/      /'
	fi
else
	fail "deploy and flip: see $logs/deploy.log"
	show_failure deploy
fi
if answer="$(curl -fsS --max-time 10 "http://$vm_ip:8080/" 2>&1)" && grep -q 'version=2.0 colour=green' <<<"$answer"; then
	pass "the service answers from green: $answer"
else
	fail "the service does not answer from green: $answer"
fi

# --- 5. a smaller disk is refused before anything changes -------------------------
# With a new admin key too: the seed files would be rewritten (and seed.iso
# rebuilt) if the refusal came after them.
guest_print() {
	find "$storage_dir/$vm_name" -maxdepth 1 -type f ! -name disk.qcow2 ! -name console.log \
		-printf '%f %m %s %T@\n' | sort
	virsh -c "$uri" dumpxml --inactive "$vm_name" 2>&1
	qemu-img info -U --output=json "$storage_dir/$vm_name/disk.qcow2" 2>&1 | grep virtual-size
}
ssh-keygen -q -t ed25519 -N "" -C chezlepro-vmtest-2 -f "$work/id_ed25519_2"
before="$(guest_print)"
if play shrink "$REPO_ROOT/playbooks/provision.yml" -e vmtest_disk_gib=4 \
	-e "{\"vm_admin_ssh_keys\": [\"$(cat "$work/id_ed25519.pub")\", \"$(cat "$work/id_ed25519_2.pub")\"]}"; then
	fail "provision.yml with disk_gib 4 (6 GiB disk) was not refused"
elif ! grep -q "$vm_name: disk_gib 4 is smaller than the current disk (6 GiB); disks are only grown" "$logs/shrink.log"; then
	fail "the shrink refusal does not name the disk: see $logs/shrink.log"
	show_failure shrink
elif [ "$(guest_print)" != "$before" ]; then
	fail "the refused shrink changed the VM's files or definition:"
	diff <(echo "$before") <(guest_print) | sed 's/^/      /' || true
else
	pass "disk_gib 4 for a 6 GiB disk refused, naming it, with the VM's files and definition unchanged"
fi

# --- 6. delete ---------------------------------------------------------------------
if $keep; then
	summary
	exit
fi
# Check mode first: it must announce the deletion and delete nothing.
if play delete-check "$REPO_ROOT/playbooks/provision.yml" -e vmtest_state=absent --check &&
	[ "$(recap_changed delete-check)" -gt 0 ] && [ -f "$storage_dir/$vm_name/disk.qcow2" ] &&
	[ "$(virsh -c "$uri" domstate "$vm_name" 2>/dev/null | tr -d '[:space:]')" = running ]; then
	pass "state=absent in check mode: changes announced, VM untouched"
else
	fail "state=absent in check mode: see $logs/delete-check.log"
fi
t0=$(now_ms)
if play delete "$REPO_ROOT/playbooks/provision.yml" -e vmtest_state=absent; then
	pass "provision.yml state=absent"
else
	fail "provision.yml state=absent: see $logs/delete.log"
	show_failure delete
fi
timing "delete" "$(secs_since "$t0")"
if virsh -c "$uri" dominfo "$vm_name" >/dev/null 2>&1; then fail "domain $vm_name still defined"; else pass "domain gone"; fi
if [ -e "$storage_dir/$vm_name" ]; then
	fail "files left: $(find "$storage_dir/$vm_name" | tr '\n' ' ')"
else
	pass "disk, seed and files gone ($storage_dir/$vm_name)"
fi
if [ -s "$work/known_hosts" ] && grep -qF "$vm_ip " "$work/known_hosts"; then
	fail "host key of $vm_ip still pinned"
else
	pass "pinned host key removed"
fi
if play delete-again "$REPO_ROOT/playbooks/provision.yml" -e vmtest_state=absent && [ "$(recap_changed delete-again)" -eq 0 ]; then
	pass "second state=absent run: changed=0"
else
	fail "second state=absent run: see $logs/delete-again.log"
fi
timing "whole test" "$(secs_since "$test_start")"

summary
