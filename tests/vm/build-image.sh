#!/usr/bin/env bash
# Build (once) the offline Debian 12 base image of the VMs on this machine:
# playbooks/vm_base_image.yml with this machine as the hypervisor. A built
# image (stamp /var/cache/chezlepro-vm/debian12/built) is left as it is.
#
#   tests/vm/build-image.sh            (make vm-image)
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$REPO_ROOT"

setup_for vm

inventory="$(mktemp /tmp/chezlepro-vm-image.XXXXXX.yml)"
trap 'rm -f "$inventory"' EXIT
cat >"$inventory" <<INV
hypervisors:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: /usr/bin/python3
      vm_install_packages: false
INV
ANSIBLE_COLLECTIONS_PATH="$(collection_path)" ansible-playbook -i "$inventory" playbooks/vm_base_image.yml "$@"
