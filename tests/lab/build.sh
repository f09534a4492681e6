#!/usr/bin/env bash
# tests/lab/build.sh OUTDIR — prepares everything the QEMU lab boots, cached in OUTDIR.
#
#   OUTDIR/<kver>/vmlinux            uncompressed kernel (PVH entry), extracted from /boot/vmlinuz-<kver>
#   OUTDIR/<kver>/netdevsim.ko       built from linux-source-6.1 against linux-headers-<kver>, stripped
#   OUTDIR/<kver>/initramfs.cpio.gz  busybox-static + modules (deps from modules.dep) + /init
#   OUTDIR/lab.env                   what run.sh reads: KVER, VMLINUX, INITRD, BIOS, QEMU, QEMU_HAS_IGB
#
# Every product is keyed by the kernel version and content hashes of its inputs (stamp files next
# to it); a signature of the inputs' sizes and mtimes short-cuts a run where nothing changed, so a
# second run does nothing (~0.2 s). Exit 77 with a reason when the kernel or QEMU is not
# installed (exit 1 instead when CI=true): scripts/install-deps.sh --test installs them.
# Env: LAB_KVER=<ver> picks a kernel when several are installed (default: the newest that has
# /boot/vmlinuz, /lib/modules and linux-headers); LAB_QEMU=<path> another qemu-system-x86_64.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)

skip() {
  if [ "${CI:-}" = true ]; then echo "lab: FAIL (CI=true, cannot skip): $*" >&2; exit 1; fi
  echo "lab: SKIP: $*" >&2; exit 77
}
log() { echo "lab-build: $*" >&2; }
hash_of() { sha256sum "$@" | awk '{print $1}' | sha256sum | cut -c1-16; }
hash_str() { printf '%s' "$1" | sha256sum | cut -c1-16; }

# --- fast path: nothing changed since the last complete run ----------------------------------------
# A signature of every input's name, size and mtime (one stat, no hashing); when it matches the
# one saved by the last complete run and the products exist, there is nothing to do. Otherwise
# the steps below compare content hashes and rebuild only what changed.
qemu_bin=${LAB_QEMU:-$(command -v qemu-system-x86_64 || true)}
bb_bin=$(command -v busybox || true)
inputs=(/boot/vmlinuz-* /lib/modules/*/modules.dep /usr/src/linux-source-*.tar.xz
        /usr/src/linux-headers-*/Makefile "$here/build.sh" "$here/init.sh" $bb_bin $qemu_bin)
sig="kver=${LAB_KVER:-} qemu=$qemu_bin $(stat -L -c '%n %s %Y' "${inputs[@]}" 2>/dev/null || true)"
if [ -f "$out/.inputs" ] && [ "$(< "$out/.inputs")" = "$sig" ] && [ -f "$out/lab.env" ]; then
  VMLINUX=""; INITRD=""
  # shellcheck disable=SC1091
  . "$out/lab.env"
  if [ -s "$VMLINUX" ] && [ -s "$INITRD" ]; then exit 0; fi
fi
rm -f "$out/.inputs"

# --- pick the kernel ----------------------------------------------------------------------------
qemu=${LAB_QEMU:-$(command -v qemu-system-x86_64 || true)}
[ -n "$qemu" ] && [ -x "$qemu" ] || skip "qemu-system-x86_64 not installed (scripts/install-deps.sh --test)"
kver=${LAB_KVER:-}
if [ -z "$kver" ]; then
  for f in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V -r); do
    v=${f#/boot/vmlinuz-}
    if [ -f "/lib/modules/$v/modules.dep" ] && [ -d "/usr/src/linux-headers-$v" ]; then kver=$v; break; fi
  done
fi
[ -n "$kver" ] && [ -f "/boot/vmlinuz-$kver" ] && [ -f "/lib/modules/$kver/modules.dep" ] \
  || skip "no Debian kernel with modules and headers installed (linux-image-amd64, linux-headers-amd64)"
command -v busybox >/dev/null && [[ $'\n'$(busybox --list)$'\n' == *$'\n'cpio$'\n'* ]] || skip "busybox-static not installed"
bb=$(command -v busybox)
file_is_static() { ! LC_ALL=C ldd "$1" >/dev/null 2>&1; }
file_is_static "$bb" || { [ -x /bin/busybox ] && file_is_static /bin/busybox && bb=/bin/busybox; } \
  || skip "busybox is not statically linked (install busybox-static)"

kdir=$out/$kver
mkdir -p "$kdir"
# One build at a time per OUTDIR (ctest may start the fixture while a manual run is going).
exec 9>"$out/.build.lock"
flock 9

# --- 1. vmlinux (PVH boot needs the uncompressed ELF) ------------------------------------------
vmlinuz=/boot/vmlinuz-$kver
key=$(hash_str "$kver $(hash_of "$vmlinuz") v1")
if [ "$(cat "$kdir/vmlinux.key" 2>/dev/null)" != "$key" ] || [ ! -s "$kdir/vmlinux" ]; then
  log "extracting vmlinux from $vmlinuz"
  rm -f "$kdir/vmlinux" "$kdir/vmlinux.key"
  tmp=$kdir/vmlinux.tmp
  ok=0
  # Try every compressor magic the x86 bzImage may carry; the first payload that is ELF wins.
  for spec in 'fd377a585a00:xz -dc' '1f8b0800:gzip -dc' '28b52ffd:zstd -dcq' '5d000000:xz -dc --format=lzma' \
              '02214c18:lz4 -dc' '425a68:bzip2 -dc'; do
    magic=${spec%%:*}; cmd=${spec#*:}
    command -v "${cmd%% *}" >/dev/null || continue
    pat=$(echo "$magic" | sed 's/../\\x&/g')
    for off in $(LC_ALL=C grep -obUaP "$pat" "$vmlinuz" 2>/dev/null | cut -d: -f1 | head -n 4); do
      tail -c "+$((off + 1))" "$vmlinuz" | $cmd > "$tmp" 2>/dev/null || true
      if [ "$(head -c 4 "$tmp" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then ok=1; break 2; fi
    done
  done
  [ "$ok" = 1 ] || { rm -f "$tmp"; echo "lab-build: cannot extract vmlinux from $vmlinuz" >&2; exit 1; }
  mv "$tmp" "$kdir/vmlinux"
  echo "$key" > "$kdir/vmlinux.key"
fi

# --- 2. netdevsim.ko (Debian does not ship it) --------------------------------------------------
headers=/usr/src/linux-headers-$kver
srctar=$(ls -1 /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n1 || true)
[ -n "$srctar" ] || skip "linux-source-6.1 not installed (needed to build netdevsim)"
[ -d "$headers" ] || skip "linux-headers-$kver not installed (needed to build netdevsim)"
pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo none; }
key=$(hash_str "$kver $(hash_of "$srctar" "$headers/Module.symvers" "$headers/.config" 2>/dev/null || true) $(pkgver "linux-headers-$kver") v1")
if [ "$(cat "$kdir/netdevsim.key" 2>/dev/null)" != "$key" ] || [ ! -s "$kdir/netdevsim.ko" ]; then
  log "building netdevsim.ko from $srctar against $headers (~25 s)"
  rm -f "$kdir/netdevsim.ko" "$kdir/netdevsim.key"
  # Kbuild cannot take an M= path with spaces: build in a private temporary directory.
  src=$(mktemp -d "${TMPDIR:-/tmp}/sriovd-lab-netdevsim.XXXXXX")
  trap 'rm -rf "$src"' EXIT
  top=$(tar -tJf "$srctar" 2>/dev/null | head -n1 | cut -d/ -f1 || true)
  tar -xJf "$srctar" -C "$src" --strip-components=1 "$top/drivers/net/netdevsim"
  [ -f "$src/drivers/net/netdevsim/Makefile" ] || { echo "lab-build: no drivers/net/netdevsim in $srctar" >&2; exit 1; }
  if ! make -s -C "$headers" M="$src/drivers/net/netdevsim" CONFIG_NETDEVSIM=m -j"$(nproc)" modules \
       > "$kdir/netdevsim.build.log" 2>&1; then
    tail -n 30 "$kdir/netdevsim.build.log" >&2; echo "lab-build: netdevsim build failed (log: $kdir/netdevsim.build.log)" >&2; exit 1
  fi
  strip --strip-debug -o "$kdir/netdevsim.ko" "$src/drivers/net/netdevsim/netdevsim.ko"
  rm -rf "$src"
  echo "$key" > "$kdir/netdevsim.key"
fi

# --- 3. initramfs ---------------------------------------------------------------------------------
# Modules, in load groups: group 0 (reaching the host root) is loaded first; the others load in
# parallel while the root is mounted, so they must not share modules (checked below). Their
# dependencies come from modules.dep (modprobe --show-depends): first occurrence = load order.
# Group igb is loaded only when the guest has an 82576.
LAB_GROUPS=("root:virtio_pci 9pnet_virtio 9p overlay" "nvme:nvme" "vfio:vfio_pci vfio_iommu_type1"
            "net:psample" "igb:igb")
declare -A owner=()
group_files=()
mods=""
for g in "${LAB_GROUPS[@]}"; do
  gname=${g%%:*}
  # shellcheck disable=SC2086
  list=$(modprobe -S "$kver" --show-depends -a ${g#*:} | awk '$1 == "insmod" && !seen[$2]++ {print $2}')
  [ -n "$list" ] || { echo "lab-build: modprobe --show-depends found nothing for ${g#*:} ($kver)" >&2; exit 1; }
  glist=""
  for m in $list; do
    if [ -n "${owner[$m]:-}" ]; then
      [ "${owner[$m]}" = root ] && continue
      echo "lab-build: $m is needed by groups ${owner[$m]} and $gname; merge them in LAB_GROUPS" >&2; exit 1
    fi
    owner[$m]=$gname; glist+="$m"$'\n'; mods+="$m"$'\n'
  done
  group_files+=("$gname:$glist")
done
key=$(hash_str "$kver $(hash_of "$here/init.sh" "$here/build.sh" "$bb" "$kdir/netdevsim.ko" $mods)")
if [ "$(cat "$kdir/initramfs.key" 2>/dev/null)" != "$key" ] || [ ! -s "$kdir/initramfs.cpio.gz" ]; then
  log "building initramfs ($(echo -n "$mods" | wc -l) modules + netdevsim)"
  root=$kdir/initramfs.root
  rm -rf "$root"
  mkdir -p "$root"/{bin,sbin,proc,sys,tmp,mnt,lib/modules,etc}
  cp "$bb" "$root/bin/busybox"
  for a in $("$bb" --list); do [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"; done
  for gf in "${group_files[@]}"; do
    for m in ${gf#*:}; do
      cp "$m" "$root/lib/modules/"
      basename "$m" >> "$root/lib/modules/load-order.${gf%%:*}"
    done
  done
  cp "$kdir/netdevsim.ko" "$root/lib/modules/netdevsim.ko"
  cp "$here/init.sh" "$root/init"
  chmod 755 "$root/init"
  printf '#!/bin/sh\n# The kernel asks for modules here; the real tree is in the chroot.\nexec chroot /mnt/root /sbin/modprobe "$@"\n' \
    > "$root/sbin/lab-modprobe"
  chmod 755 "$root/sbin/lab-modprobe"
  echo "$kver" > "$root/etc/lab-kver"
  # /dev/console must exist before devtmpfs is mounted (the kernel opens it for init).
  (cd "$root" && { find . -mindepth 1 -printf '%P\n'; } | LC_ALL=C sort \
     | "$bb" cpio -o -H newc 2>/dev/null; ) > "$kdir/initramfs.cpio.body"
  # /dev and /dev/console as newc entries written by hand (no mknod on the host), then the tree
  # (whose trailer ends the archive). The kernel opens /dev/console for init before devtmpfs.
  newc_entry() {  # NAME MODE NLINK RDEVMAJOR RDEVMINOR
    local name=$1 namesize=$(( ${#1} + 1 ))
    printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
      0 "$2" 0 0 "$3" 0 0 0 0 "$4" "$5" "$namesize" 0
    printf '%s\0' "$name"
    head -c $(( (4 - (110 + namesize) % 4) % 4 )) /dev/zero
  }
  { newc_entry dev $((8#040755)) 2 0 0; newc_entry dev/console $((8#020600)) 1 5 1
    cat "$kdir/initramfs.cpio.body"; } | gzip -1 > "$kdir/initramfs.cpio.gz.tmp"
  rm -f "$kdir/initramfs.cpio.body"
  rm -rf "$root"
  mv "$kdir/initramfs.cpio.gz.tmp" "$kdir/initramfs.cpio.gz"
  echo "$key" > "$kdir/initramfs.key"
fi

# --- 4. what run.sh needs -------------------------------------------------------------------------
bios=""
for f in /usr/share/qemu/qboot.rom /usr/share/qemu/bios-microvm.bin /usr/share/seabios/bios-microvm.bin; do
  if [ -f "$f" ]; then bios=$f; break; fi
done
qemu_key=$(stat -c '%s %Y' "$qemu")
if [ "$(sed -n 's/^QEMU_KEY=//p' "$out/lab.env" 2>/dev/null)" = "'$qemu_key'" ]; then
  has_igb=$(sed -n "s/^QEMU_HAS_IGB=//p" "$out/lab.env")
  qemu_version=$(sed -n "s/^QEMU_VERSION=//p" "$out/lab.env" | tr -d "'")
else
  has_igb=0
  devs=$("$qemu" -nodefaults -device help 2>/dev/null || true)
  [[ $devs == *'name "igb"'* ]] && has_igb=1
  qemu_version=$("$qemu" --version | head -n1 | awk '{print $4}')
fi
env_new=$(cat <<EOF
KVER='$kver'
VMLINUX='$kdir/vmlinux'
INITRD='$kdir/initramfs.cpio.gz'
BIOS='$bios'
QEMU='$qemu'
QEMU_KEY='$qemu_key'
QEMU_VERSION='$qemu_version'
QEMU_HAS_IGB=$has_igb
EOF
)
if [ "$(cat "$out/lab.env" 2>/dev/null)" != "$env_new" ]; then
  printf '%s\n' "$env_new" > "$out/lab.env.tmp" && mv "$out/lab.env.tmp" "$out/lab.env"
  log "ready: kernel $kver, QEMU $qemu_version (igb: $([ "$has_igb" = 1 ] && echo yes || echo no)), firmware ${bios:-default}"
fi
printf '%s' "$sig" > "$out/.inputs"
