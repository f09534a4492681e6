#!/bin/sh
# /init of the lab guest (busybox sh, from the initramfs that tests/lab/build.sh makes).
#
# Loads the modules, mounts the host root (9p, read-only) under a tmpfs overlay at /mnt/root,
# mounts the results share at /lab/out and the optional state share at /lab/state inside it,
# sets up netdevsim (device "1 1", max_vfs 64) and igb when present, then runs
# /lab/out/cmd.sh (written by run.sh) chrooted into the overlay with bash, writes its exit
# status to /lab/out/status and powers off.
export PATH=/bin:/sbin
R=/mnt/root
OUT=$R/lab/out

is_mounted() { grep -q " $1 " /proc/mounts; }
up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "lab-init [$(up)] $*"; }
die() {
  say "FATAL: $*"
  if is_mounted "$OUT"; then
    echo "lab-init: $*" >> "$OUT/lab-error"
    echo 125 > "$OUT/status"
    umount "$OUT"
  fi
  sync
  echo b > /proc/sysrq-trigger
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
t_init=$(up)
say "init at ${t_init}s"

# The kernel's request_module() runs this helper in the initramfs root; send it into the chroot.
echo /sbin/lab-modprobe > /proc/sys/kernel/modprobe
load_group() {
  while read -r m; do insmod "/lib/modules/$m" || say "insmod $m failed"; done < "/lib/modules/load-order.$1"
}
load_group root
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
# netdevsim: bus device 1 with one port (eth0: created before igb's netdev, no udev to rename),
# up to 64 VFs.
setup_netdevsim() {
  if insmod /lib/modules/netdevsim.ko; then
    echo "1 1" > /sys/bus/netdevsim/new_device || say "netdevsim new_device failed"
    if [ -e /sys/kernel/debug/netdevsim/netdevsim1/max_vfs ]; then
      echo 64 > /sys/kernel/debug/netdevsim/netdevsim1/max_vfs || say "netdevsim max_vfs failed"
    else
      say "netdevsim: no debugfs max_vfs"
    fi
  else
    say "insmod netdevsim failed"
  fi
}
# The device drivers load while the host root is mounted (no group shares a module: build.sh).
# igb (82576, when QEMU has it) is loaded by hand, there being no udev; its probe takes ~0.5 s.
load_group nvme & p_nvme=$!
load_group vfio & p_vfio=$!
{
  load_group net
  setup_netdevsim
  if grep -qx 0x10c9 /sys/bus/pci/devices/*/device 2>/dev/null; then load_group igb; fi
} & p_net=$!
say "root modules loaded"

# --- the host root, read-only, with a tmpfs overlay on top ---------------------------------------
mkdir -p /mnt/lower /mnt/rw $R
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro hostroot /mnt/lower \
  || die "cannot mount the host root over 9p"
mount -t tmpfs -o mode=755 tmpfs /mnt/rw
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay -o lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work,xino=off,index=off,redirect_dir=off,metacopy=off \
  overlay $R || die "cannot mount the overlay"

mkdir -p $R/lab/out $R/lab/state
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 labout $R/lab/out || die "cannot mount the results share"
tags=$(cat /sys/bus/virtio/devices/*/mount_tag 2>/dev/null | tr '\0' '\n')
if echo "$tags" | grep -qx labstate; then
  # cache=mmap: shared writable mmap works (sqlite WAL), everything else goes straight to the host.
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=mmap labstate $R/lab/state \
    || die "cannot mount the state share"
fi

mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mount -t debugfs debugfs $R/sys/kernel/debug 2>/dev/null
mount -t tmpfs -o mode=755 tmpfs $R/run
mkdir -p $R/run/lock
say "root mounted"
hostname sriovd-lab
ip link set lo up

# --- devices -------------------------------------------------------------------------------------
wait $p_nvme $p_vfio $p_net
say "drivers loaded"
# --- the command -----------------------------------------------------------------------------------
t_ready=$(up)
say "ready at ${t_ready}s"
chroot $R /usr/bin/env -i /bin/bash --noprofile --norc /lab/out/cmd.sh \
  </dev/null >$OUT/stdout 2>$OUT/stderr
rc=$?
t_end=$(up)
say "command exited $rc at ${t_end}s"

# Stop what the command left running, so the shares are quiet before power-off.
others() { for p in /proc/[0-9]*; do p=${p#/proc/}; [ "$p" = 1 ] && continue; [ -s /proc/$p/cmdline ] && echo $p; done; }
if [ -n "$(others)" ]; then
  kill -TERM -1 2>/dev/null
  i=0; while [ $i -lt 30 ] && [ -n "$(others)" ]; do sleep 0.1; i=$((i + 1)); done
  [ -n "$(others)" ] && kill -KILL -1 2>/dev/null
fi
say "others stopped"
printf 'init=%s ready=%s end=%s\n' "$t_init" "$t_ready" "$t_end" > $OUT/timing
echo $rc > $OUT/status
sync
say "synced"
is_mounted $R/lab/state && umount $R/lab/state
umount $OUT
# Everything is on the host now: reset at once (-no-reboot makes QEMU exit) instead of
# poweroff -f, whose device shutdown costs ~0.7 s of TCG time.
echo b > /proc/sysrq-trigger
poweroff -f
