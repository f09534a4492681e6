# A libvirtd of the lab guest's own, for tests that run real VMs with devices sriovd hands out
# (bash, sourced inside the guest after smoke/lib.sh).
#
# The guest runs the host's libvirtd from the chroot in system mode (qemu:///system) with a
# private config and socket directory. The guest has no cgroup hierarchy for libvirt, no mount
# namespaces worth using, no AppArmor/SELinux and no virtlogd, so qemu.conf turns those off
# (the overlay over the host's root is writable and vanishes at power-off). There is no
# /dev/kvm: domains are <domain type='qemu'> (TCG inside TCG). Bookworm's libvirt 9.0 passes
# -no-acpi to the QEMU 10 of bookworm-backports, which removed it, unless the domain has
# <features><acpi/></features>.
# shellcheck shell=bash

vm_dir=/run/sriovd-lab-libvirt
LIBVIRT_URI="qemu:///system?socket=$vm_dir/sock/libvirt-sock"
libvirtd_pid=""

virsh_() { virsh -q -c "$LIBVIRT_URI" "$@"; }

# start_libvirtd: libvirtd in the background, answering within 60 s.
start_libvirtd() {
  mkdir -p "$vm_dir/sock" /var/run/libvirt /var/lib/libvirt/qemu /var/log/libvirt/qemu /var/cache/libvirt/qemu
  cat > "$vm_dir/libvirtd.conf" <<CONF
unix_sock_dir = "$vm_dir/sock"
unix_sock_group = "root"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:$vm_dir/libvirtd.log"
CONF
  cat > /etc/libvirt/qemu.conf <<CONF
user = "root"
group = "root"
dynamic_ownership = 0
cgroup_controllers = [ ]
namespaces = [ ]
security_driver = "none"
stdio_handler = "file"
remember_owner = 0
CONF
  ulimit -l unlimited   # VFIO pins the guest's memory
  /usr/sbin/libvirtd -f "$vm_dir/libvirtd.conf" >"$vm_dir/libvirtd.out" 2>&1 &
  libvirtd_pid=$!
  local i
  for i in $(seq 1 600); do
    virsh_ version >/dev/null 2>&1 && { pass "libvirtd answers on its private socket (pid $libvirtd_pid)"; return 0; }
    kill -0 "$libvirtd_pid" 2>/dev/null || break
    sleep 0.1
  done
  fail "libvirtd did not start; its output:"; sed 's/^/    /' "$vm_dir/libvirtd.out" "$vm_dir/libvirtd.log" 2>/dev/null
  return 1
}

stop_libvirtd() {
  [ -n "$libvirtd_pid" ] || return 0
  kill -TERM "$libvirtd_pid" 2>/dev/null; wait "$libvirtd_pid" 2>/dev/null || true
  libvirtd_pid=""
}

# define_vm NAME: a diskless q35 domain of 64 MiB with no OS to boot (it never needs one: the
# checks are on what QEMU opened and what it shows in its monitor).
define_vm() {
  cat > "$vm_dir/$1.xml" <<XML
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <features><acpi/></features>
  <devices>
    <emulator>$(command -v qemu-system-x86_64)</emulator>
    <controller type='pci' model='pcie-root'/>
    <controller type='pci' model='pcie-root-port'/>
    <controller type='pci' model='pcie-root-port'/>
    <controller type='pci' model='pcie-root-port'/>
    <memballoon model='none'/>
  </devices>
</domain>
XML
  virsh_ define "$vm_dir/$1.xml" >/dev/null
}

# qemu_pid NAME: the pid of the domain's QEMU (libvirt's pid file).
qemu_pid() { cat "/var/run/libvirt/qemu/$1.pid" 2>/dev/null; }
# qemu_holds PID PATH: "yes" when process PID has PATH open.
qemu_holds() {
  local fd
  for fd in /proc/"$1"/fd/*; do [ "$(readlink "$fd")" = "$2" ] && { echo yes; return; }; done
  echo no
}
# qmp NAME CMD: a QMP command through libvirt (JSON out).
qmp() { virsh_ qemu-monitor-command "$1" "$2"; }
# vm_pci_ids NAME: "vendor:device" of every vfio-pci device the VM's QEMU shows its guest, from
# the device tree (HMP `info qtree`: "dev: vfio-pci, id ..." then "pci id 1b36:0010 (sub ...)").
# Not QMP query-pci: a domain started paused never runs its firmware, so the root ports the
# assigned devices sit behind have no bus numbers yet, and query-pci, which walks buses by
# number, lists only what is on bus 0.
vm_pci_ids() {
  virsh_ qemu-monitor-command "$1" --hmp 'info qtree' |
    awk '/dev: vfio-pci/ { vfio = 1 } vfio && match($0, /pci id [0-9a-f]+:[0-9a-f]+/) {
           print substr($0, RSTART + 7, RLENGTH - 7); vfio = 0 }' | sort -u
}
