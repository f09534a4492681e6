#!/usr/bin/env bash
# kill -9 on the real kernel (one boot): guest.sh SRIOVD SRIOVD_CLI [KILLS]
# The daemon is killed at random moments while it allocates and releases leases of a vfio pool
# (NVMe VFs) and of a netdev pool (igb VFs, with MAC and VLAN), binds and unbinds an IOMMU group
# to vfio-pci, and changes the VF count of the NVMe PF (4 <-> 3) and of igb (3 <-> 2). After each
# kill it is started again (it reconciles the journal at start) and the host is checked against
# sysfs and `ip -d link`: nothing half-done, no lease lost or duplicated.
# The kill delay is random in [0, 1.25 x the operation's measured duration], so kills land before
# the request arrives, between the kernel writes and after the answer; the estimate grows when
# a kill cut the operation short and follows the duration when it ended first.
. "$(dirname "${BASH_SOURCE[0]}")/../smoke/lib.sh"

sriovd=${1:?usage: guest.sh SRIOVD SRIOVD_CLI [KILLS]}
cli_bin=${2:?}
kills_wanted=${3:-50}
state=/tmp/sriovd-crash
log=${LAB_OUT:-/tmp}/sriovd-crash.log
. "$(dirname "${BASH_SOURCE[0]}")/../daemon/lib.sh"

NVME=0000:02:00.0
IGB=0000:01:00.0
PF_IF=eth1
CLEAN_VF='link/ether 00:00:00:00:00:00 brd ff:ff:ff:ff:ff:ff, spoof checking on, link-state auto, trust off$'

[ -d /sys/bus/pci/devices/$IGB ] && [ "${LAB_IGB:-0}" = 1 ] ||
  skip_test "no igb in this QEMU (needs QEMU >= 8: bookworm-backports)"
RANDOM=${SRIOVD_CRASH_SEED:-20261207}
echo "seed ${SRIOVD_CRASH_SEED:-20261207}, $kills_wanted kills"

# A sleep without a fork (each exec costs ~50 ms under TCG): read with a timeout from a FIFO
# nobody writes.
mkfifo /tmp/crash-nap /tmp/crash-op.fifo /tmp/crash-check.fifo /tmp/crash-ip.fifo
exec {nap_fd}<>/tmp/crash-nap
nap_ms() { read -r -t "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))" -u "$nap_fd" _; }
now_us() { echo "${EPOCHREALTIME/./}"; }

# The daemon, its log appended over every start. Ready is its "ready in" line (logged once the
# listener is bound, after reconcile), read from the log as it grows: no process per poll.
launch() {
  "$sriovd" serve --listen "unix:$sock" --state-dir "$state" >>"$log" 2>&1 &
  daemon_pid=$!
  local line partial="" deadline=$((${EPOCHREALTIME/./} + 30000000))
  while :; do
    while IFS= read -r -u "$log_fd" line; do
      line=$partial$line; partial=""
      case $line in
        *" ready in "*) return 0 ;;
        *"cannot start"*) fail "daemon did not start: $line"; lab_done; exit 1 ;;
      esac
    done
    partial+=$line  # a line written in part so far
    if [ "${EPOCHREALTIME/./}" -gt "$deadline" ]; then
      fail "daemon not ready within 30 s"; show_log; lab_done; exit 1
    fi
    nap_ms 5
  done
}
# prespawn: the processes of the next check, and the curl of the next request, started (an exec
# costs ~50 ms under TCG, more on a busy host) while the daemon starts; each blocks on a FIFO.
prespawn() {
  curl -s --unix-socket "$sock" -K /tmp/crash-check.fifo |
    jq -r -s --arg n "$NVME" --arg g "$IGB" '. as [$d, $a, $h] |
      "drift \($h.drift | length) \($h.drift | join("; "))",
      ($d.devices[] | select(.address == $n or .address == $g or .physfn == $n or .physfn == $g) |
        "dev \(.address) \(.driver // "none") \(.sriov.num_vfs // "-") \(.lease // "-")"),
      ($a.allocations[] | "lease \(.id) \(.address) \(.pool) \(.state) \(.vf_config.mac // "-") \(.vf_config.vlan // "-")")' \
    > /tmp/crash-check.out &
  check_pid=$!
  ip -d -batch /tmp/crash-ip.fifo > /tmp/crash-ip.out &
  ip_pid=$!
  prespawn_request
}
prespawn_request() {
  { curl -s --unix-socket "$sock" -o /tmp/crash-op.out -w '%{http_code}' -K /tmp/crash-op.fifo > /tmp/crash-op.code
    echo "${EPOCHREALTIME/./}" > /tmp/crash-op.end; } &
  op_pid=$!
}
# sys_driver ADDRESS: the driver bound in sysfs, into $REPLY (no fork: the drivers it can be).
sys_driver() {
  local d
  for d in vfio-pci nvme igbvf; do [ -e "/sys/bus/pci/drivers/$d/$1" ] && { REPLY=$d; return; }; done
  if [ -e "/sys/bus/pci/devices/$1/driver" ]; then REPLY=other; else REPLY=none; fi
}
rd() { local v; read -r v < "$1"; REPLY=$v; }

# --- setup ---------------------------------------------------------------------------------
rm -rf "$state"; : > "$log"
exec {log_fd}<"$log"
launch
run_cli "4 NVMe VFs, autoprobe off" 0 vfs $NVME 4 --autoprobe off
run_cli "3 igb VFs, autoprobe off (no igbvf: VF counts change in well under a second)" 0 vfs $IGB 3 --autoprobe off
NVF=(); IVF=()
# VF addresses through cd -P (a builtin), not readlink: no process each.
for i in 0 1 2 3; do cd -P /sys/bus/pci/devices/$NVME/virtfn$i && NVF[i]=${PWD##*/}; done
for i in 0 1 2; do cd -P /sys/bus/pci/devices/$IGB/virtfn$i && IVF[i]=${PWD##*/}; done
cd /
run_cli "vfio pool over NVMe VF0 and VF1" 0 pool create nvme --address "${NVF[0]},${NVF[1]}"
run_cli "netdev pool over igb VF0 and VF1" 0 pool create igbnet --pf "$PF_IF#0-1" --mode netdev
echo "NVMe VFs ${NVF[*]} (VF2 is bound and unbound as a group); igb VFs ${IVF[*]}"

# What the test knows: counts, VF2's driver, the leases it was told about.
nvme_n=4 igb_n=3 vf2=none
declare -A held=() lease_mac=() lease_vlan=()
# Estimated duration of each operation (µs), and how each kill landed.
declare -A est=() n_op=() n_done=() n_cut=()
ops_all="nvme_alloc nvme_release igb_alloc igb_release group_bind group_unbind nvme_vfs igb_vfs"
for o in $ops_all; do est[$o]=200000; n_op[$o]=0; n_done[$o]=0; n_cut[$o]=0; done
mac_seq=0

count_pool() { local id c=0; for id in "${!held[@]}"; do [ "${held[$id]}" = "$1" ] && c=$((c + 1)); done; REPLY=$c; }
first_of_pool() { local id; for id in "${!held[@]}"; do [ "${held[$id]}" = "$1" ] && { REPLY=$id; return; }; done; }

# check N OP TOLD: the invariants after restart N, following operation OP whose answer the client
# got (TOLD=1, exit status 0) or not (0).
check() {
  local n=$1 op=$2 told=$3 bad=$lab_failures
  # What the daemon says (curl | jq) and what rtnetlink says (ip), from the processes
  # prespawn started while the daemon was starting: each waits on a FIFO for its input.
  printf 'url = "http://sriovd/v1/devices"\nurl = "http://sriovd/v1/allocations"\nurl = "http://sriovd/v1/host"\n' \
    > /tmp/crash-check.fifo
  printf 'link show %s\n' $PF_IF > /tmp/crash-ip.fifo
  wait "$check_pid" "$ip_pid"
  local lines ipl
  read -r -d '' lines < /tmp/crash-check.out; read -r -d '' ipl < /tmp/crash-ip.out
  local -A dev_drv=() dev_lease=() srv_addr=() srv_pool=() by_addr=()
  local -a vf_mac=() vf_vlan=() vf_line=()
  local kind a b c d e f
  while read -r kind a b c d e f; do
    case $kind in
      drift) [ "$a" = 0 ] || fail "restart $n ($op): drift reported: $b $c $d $e $f" ;;
      dev) dev_drv[$a]=$b; dev_lease[$a]=$d
           [ "$a" = $NVME ] && srv_nvme_n=$c; [ "$a" = $IGB ] && srv_igb_n=$c ;;
      lease)  # lease ID ADDRESS POOL STATE MAC VLAN
        [ "$d" = active ] || fail "restart $n ($op): lease $a ($b) is $d"
        [ -n "${srv_addr[$a]:-}" ] && fail "restart $n ($op): lease $a listed twice"
        [ -n "${by_addr[$b]:-}" ] && fail "restart $n ($op): $b in two leases: ${by_addr[$b]} and $a"
        srv_addr[$a]=$b; by_addr[$b]=$a; srv_pool[$a]=${c/igbnet/igb}
        if [ -n "${lease_mac[$a]:-}" ]; then
          [ "$e $f" = "${lease_mac[$a]} ${lease_vlan[$a]}" ] ||
            fail "restart $n ($op): lease $a has vf_config '$e $f', allocated with '${lease_mac[$a]} ${lease_vlan[$a]}'"
        elif [ "$c" = igbnet ]; then
          lease_mac[$a]=$e; lease_vlan[$a]=$f
        fi
        [ "${dev_lease[$b]:-}" = "$a" ] || fail "restart $n ($op): lease $a on $b, but the device names '${dev_lease[$b]:-}'" ;;
    esac
  done <<< "$lines"
  local re='^ +vf ([0-9]+) +(link/ether ([0-9a-f:]+) .*)$' l i
  while IFS= read -r l; do
    [[ $l =~ $re ]] || continue
    i=${BASH_REMATCH[1]}; vf_line[$i]=${BASH_REMATCH[2]}; vf_mac[$i]=${BASH_REMATCH[3]}
    if [[ $l =~ vlan\ ([0-9]+) ]]; then vf_vlan[$i]=${BASH_REMATCH[1]}; else vf_vlan[$i]=0; fi
  done <<< "$ipl"

  # VF counts: the kernel's and the daemon's agree, and are the previous or the desired count
  # (the desired one when the client was told it is done).
  local sys_n sys_g
  rd /sys/bus/pci/devices/$NVME/sriov_numvfs; sys_n=$REPLY
  rd /sys/bus/pci/devices/$IGB/sriov_numvfs; sys_g=$REPLY
  [ "$sys_n" = "${srv_nvme_n:-}" ] || fail "restart $n ($op): NVMe num_vfs $sys_n in sysfs, ${srv_nvme_n:-?} reported"
  [ "$sys_g" = "${srv_igb_n:-}" ] || fail "restart $n ($op): igb num_vfs $sys_g in sysfs, ${srv_igb_n:-?} reported"
  if [ "$op" = nvme_vfs ]; then
    local want=$((7 - nvme_n))
    if [ "$told" = 1 ]; then [ "$sys_n" = "$want" ] || fail "restart $n: NVMe num_vfs $sys_n after a change to $want was answered"
    else [ "$sys_n" = "$want" ] || [ "$sys_n" = "$nvme_n" ] || fail "restart $n: NVMe num_vfs $sys_n, neither $nvme_n nor $want"; fi
  else
    [ "$sys_n" = "$nvme_n" ] || fail "restart $n ($op): NVMe num_vfs $sys_n, expected $nvme_n"
  fi
  if [ "$op" = igb_vfs ]; then
    local want=$((5 - igb_n))
    if [ "$told" = 1 ]; then [ "$sys_g" = "$want" ] || fail "restart $n: igb num_vfs $sys_g after a change to $want was answered"
    else [ "$sys_g" = "$want" ] || [ "$sys_g" = "$igb_n" ] || fail "restart $n: igb num_vfs $sys_g, neither $igb_n nor $want"; fi
  else
    [ "$sys_g" = "$igb_n" ] || fail "restart $n ($op): igb num_vfs $sys_g, expected $igb_n"
  fi
  nvme_n=$sys_n igb_n=$sys_g

  # Leases: every lease the client holds is there (but one whose release was not answered); at
  # most one the client never heard of (an allocation whose answer the kill cut off).
  local id extra=0
  for id in "${!held[@]}"; do
    [ -n "${srv_addr[$id]:-}" ] && continue
    [ "$op" = "${held[$id]}_release" ] && [ "$told" = 0 ] && [ "$id" = "$released_id" ] && continue
    fail "restart $n ($op): lease $id (${held[$id]}) lost"
  done
  for id in "${!srv_addr[@]}"; do
    [ -n "${held[$id]:-}" ] && continue
    if [ "$told" = 0 ] && [ "$op" = "${srv_pool[$id]/igbnet/igb}_alloc" ]; then extra=$((extra + 1))
    else fail "restart $n ($op): lease $id on ${srv_addr[$id]} the client never heard of"; fi
  done
  [ "$extra" -le 1 ] || fail "restart $n ($op): $extra leases the client never heard of"
  if [ "$told" = 1 ] && [ "${op#*_}" = release ]; then
    [ -z "${srv_addr[$released_id]:-}" ] || fail "restart $n: lease $released_id still there after its release was answered"
  fi
  held=()
  for id in "${!srv_addr[@]}"; do held[$id]=${srv_pool[$id]/igbnet/igb}; done

  # Every VF: sysfs and the daemon agree on its driver, and the driver is what its state says.
  local addr drv ov
  for ((i = 0; i < sys_n; i++)); do
    addr=${NVF[i]}
    sys_driver "$addr"; drv=$REPLY
    [ "$drv" = "${dev_drv[$addr]:-absent}" ] || fail "restart $n ($op): $addr on $drv in sysfs, ${dev_drv[$addr]:-absent} reported"
    rd "/sys/bus/pci/devices/$addr/driver_override"; ov=$REPLY
    if [ -n "${by_addr[$addr]:-}" ]; then
      [ "$drv" = vfio-pci ] || fail "restart $n ($op): $addr leased (vfio) but on $drv"
    elif [ "$i" = 2 ]; then
      case $drv in
        vfio-pci) ;;
        none) [ "$ov" = "(null)" ] || fail "restart $n ($op): $addr unbound but driver_override '$ov'" ;;
        *) fail "restart $n ($op): $addr (group bind target) on $drv" ;;
      esac
      if [ "$op" = group_bind ] && [ "$told" = 1 ]; then [ "$drv" = vfio-pci ] || fail "restart $n: $addr on $drv after its group bind was answered"; fi
      if [ "$op" = group_unbind ] && [ "$told" = 1 ]; then [ "$drv" = none ] || fail "restart $n: $addr on $drv after its group unbind was answered"; fi
      if [ "$op" != group_bind ] && [ "$op" != group_unbind ]; then [ "$drv" = "$vf2" ] || fail "restart $n ($op): $addr on $drv, was $vf2"; fi
      vf2=$drv
    else
      [ "$drv" = none ] || fail "restart $n ($op): $addr free (or outside every pool) but on $drv"
      [ "$ov" = "(null)" ] || fail "restart $n ($op): $addr free but driver_override '$ov'"
    fi
  done
  for ((i = 0; i < sys_g; i++)); do
    addr=${IVF[i]}
    sys_driver "$addr"; drv=$REPLY
    [ "$drv" = "${dev_drv[$addr]:-absent}" ] || fail "restart $n ($op): $addr on $drv in sysfs, ${dev_drv[$addr]:-absent} reported"
    [ "$drv" = none ] || fail "restart $n ($op): igb $addr on $drv (netdev leases keep the VF's driver: none)"
    id=${by_addr[$addr]:-}
    if [ -n "$id" ]; then
      [ "${vf_mac[i]:-} ${vf_vlan[i]:-}" = "${lease_mac[$id]} ${lease_vlan[$id]}" ] ||
        fail "restart $n ($op): igb VF $i (lease $id) has MAC/VLAN '${vf_mac[i]:-} ${vf_vlan[i]:-}', lease says '${lease_mac[$id]} ${lease_vlan[$id]}'"
    else
      [[ ${vf_line[i]:-} =~ $CLEAN_VF ]] || fail "restart $n ($op): igb VF $i free but not clean: ${vf_line[i]:-missing}"
    fi
  done
  [ "$lab_failures" = "$bad" ] || { echo "  state after restart $n:"; sed 's/^/    /' <<< "$lines"; grep '^ *vf ' <<< "$ipl" | sed 's/^/    /'; }
}

# --- the kills -------------------------------------------------------------------------------
kills=0 restarts=0 t_loop=$(now_us) us_op=0 us_start=0 us_check=0
prespawn_request
released_id=""
while [ "$kills" -lt "$kills_wanted" ]; do
  count_pool nvme; hn=$REPLY; count_pool igb; hg=$REPLY
  # What to aim at, by weight: a lease or release in either pool, the group, a VF count change
  # (igb's least often: it takes seconds). A count change the daemon would refuse (a lease, or
  # VF2 on vfio-pci) becomes the request that clears the way.
  case $((RANDOM % 11)) in
    0 | 1 | 2) if [ "$hn" = 0 ] || { [ "$hn" = 1 ] && ((RANDOM % 2)); }; then op=nvme_alloc; else op=nvme_release; fi ;;
    3 | 4 | 5) if [ "$hg" = 0 ] || { [ "$hg" = 1 ] && ((RANDOM % 2)); }; then op=igb_alloc; else op=igb_release; fi ;;
    6 | 7) if [ "$vf2" = none ]; then op=group_bind; else op=group_unbind; fi ;;
    8 | 9) if [ "$hn" != 0 ]; then op=nvme_release; elif [ "$vf2" != none ]; then op=group_unbind; else op=nvme_vfs; fi ;;
    10) if [ "$hg" != 0 ]; then op=igb_release; else op=igb_vfs; fi ;;
  esac
  # The request goes through the curl prespawn started: writing its config to the FIFO sends it,
  # so no exec sits between the moment the request goes and the kill.
  body=""
  case $op in
    nvme_alloc) method=POST path=/v1/allocations body='{"pool": "nvme", "consumer": {"kind": "vm", "name": "vm'$kills'"}}' ;;
    igb_alloc)
      mac_seq=$((mac_seq + 1))
      printf -v req_mac '52:54:00:01:%02x:%02x' $((mac_seq / 256)) $((mac_seq % 256))
      req_vlan=$((1 + RANDOM % 4094))
      method=POST path=/v1/allocations
      body='{"pool": "igbnet", "consumer": {"kind": "pod", "name": "pod'$kills'"}, "vf_config": {"mac": "'$req_mac'", "vlan": '$req_vlan'}}' ;;
    nvme_release) first_of_pool nvme; released_id=$REPLY; method=DELETE path=/v1/allocations/$REPLY ;;
    igb_release) first_of_pool igb; released_id=$REPLY; method=DELETE path=/v1/allocations/$REPLY ;;
    group_bind) method=PUT path=/v1/devices/${NVF[2]}/driver body='{"driver": "vfio-pci", "group": true}' ;;
    group_unbind) method=PUT path=/v1/devices/${NVF[2]}/driver body='{"driver": "host", "group": true}' ;;
    nvme_vfs) method=PUT path=/v1/devices/$NVME/sriov body='{"num_vfs": '$((7 - nvme_n))', "drivers_autoprobe": false}' ;;
    igb_vfs) method=PUT path=/v1/devices/$IGB/sriov body='{"num_vfs": '$((5 - igb_n))', "drivers_autoprobe": false}' ;;
  esac
  config="url = \"http://sriovd$path\"
request = \"$method\""
  [ -n "$body" ] && config+="
header = \"Content-Type: application/json\"
data-binary = \"${body//\"/\\\"}\""
  delay=$(( (RANDOM * 32768 + RANDOM) % (est[$op] * 5 / 4 / 1000 + 1) ))
  printf '%s\n' "$config" > /tmp/crash-op.fifo
  t0=${EPOCHREALTIME/./}
  nap_ms "$delay"
  kill -9 "$daemon_pid"; wait "$daemon_pid" 2>/dev/null
  wait "$op_pid"
  read -r code < /tmp/crash-op.code; read -r t_end < /tmp/crash-op.end
  kills=$((kills + 1)); n_op[$op]=$((n_op[$op] + 1))
  told=0
  case $code in
    200 | 201)
      told=1; n_done[$op]=$((n_done[$op] + 1))
      # It ended before the kill: its duration.
      est[$op]=$(( (est[$op] + t_end - t0) / 2 )) ;;
    000)
      n_cut[$op]=$((n_cut[$op] + 1))
      # Cut short: it takes longer than the kill delay; aim later next time.
      [ $((delay * 1000)) -ge $((est[$op] / 2)) ] && est[$op]=$((est[$op] * 3 / 2)) ;;
    *) read -r -d '' out < /tmp/crash-op.out
       fail "kill $kills: $op answered $code, which none of these operations should meet: $out" ;;
  esac
  if [ "$told" = 1 ]; then
    case $op in
      nvme_alloc | igb_alloc)
        read -r -d '' out < /tmp/crash-op.out
        [[ $out =~ \"id\":\"([^\"]+)\" ]] || fail "kill $kills: no lease id in $out"
        id=${BASH_REMATCH[1]}
        held[$id]=${op%_alloc}
        [ "$op" = igb_alloc ] && lease_mac[$id]=$req_mac lease_vlan[$id]=$req_vlan ;;
      nvme_release | igb_release) unset "held[$released_id]" ;;
    esac
  fi
  t1=${EPOCHREALTIME/./}
  prespawn
  launch
  t2=${EPOCHREALTIME/./}
  restarts=$((restarts + 1))
  check "$restarts" "$op" "$told"
  t3=${EPOCHREALTIME/./}
  us_op=$((us_op + t1 - t0)) us_start=$((us_start + t2 - t1)) us_check=$((us_check + t3 - t2))
  [ "$lab_failures" -gt 20 ] && { fail "too many failures: stopping"; break; }
done
t_loop=$(( ($(now_us) - t_loop) / 1000 ))
: > /tmp/crash-op.fifo  # the unused curl reads no URL and exits
wait "$op_pid"
stop_daemon
pass "$kills kills and restarts in $((t_loop / 1000)).$(printf '%03d' $((t_loop % 1000))) s"
echo "  time per kill: $((us_op / kills / 1000)) ms from the request to the kill's end, $((us_start / kills / 1000)) ms to ready, $((us_check / kills / 1000)) ms checking"
echo "  operation: killed (of which the answer came first), estimated duration"
for o in $ops_all; do
  printf '    %-13s %3d (%d answered, %d cut off), ~%d ms\n' "$o" "${n_op[$o]}" "${n_done[$o]}" "${n_cut[$o]}" $((est[$o] / 1000))
done
for o in allocate release set_driver set_num_vfs; do
  echo "  starts that undid an interrupted $o: $(grep -c "undid interrupted $o " "$log")"
done
echo "  starts that recovered something: $(grep -c 'reconcile: [1-9][0-9]* recovered' "$log")"
expect "every restart found no drift and nothing half-done" 0 "$lab_failures"
[ "$lab_failures" = 0 ] || show_log | tail -80
lab_done
