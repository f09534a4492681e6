#!/usr/bin/env bash
# Installs what sriovd needs on Debian 12, non-interactively and idempotently.
#   scripts/install-deps.sh           build + run (the demo)
#   scripts/install-deps.sh --test    also what the tests, benchmarks and the QEMU lab need
set -euo pipefail

want_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "install-deps.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

# Build and runtime.
BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  libpci-dev pciutils pci.ids libudev-dev libmnl-dev
  nlohmann-json3-dev libcpp-httplib-dev libvalijson-dev libsqlite3-dev libsystemd-dev
  libcli11-dev libfmt-dev libspdlog-dev libcurl4-openssl-dev doctest-dev prometheus-cpp-dev
  libvirt-dev libxml2-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  help2man
)

# Tests, fuzzing, benchmarks.
TEST_PACKAGES=(
  clang libclang-rt-14-dev clang-format clang-tidy clang-16 libclang-rt-16-dev clang-tidy-16
  wrk nginx-light hyperfine curl python3 jq prometheus
  libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients
  python3-grpcio python3-grpc-tools
)
# virt/'s tests run virt-xml-validate (libvirt-clients) and a libvirtd of their own (session
# mode, in a temp dir) with a QEMU domain (qemu-system-x86, below). Installing the daemon
# starts nothing where systemd does not run: Debian 12's libvirt-daemon-system ships no init
# scripts and starts its units only when /run/systemd/system exists.

# The QEMU lab (tests/lab): a real Debian kernel with SR-IOV devices under TCG.
# linux-image-amd64 is the guest kernel (and gives the host the same /lib/modules tree);
# linux-headers-amd64 + linux-source-6.1 build netdevsim, which Debian does not ship.
# qemu-system-x86 is preferably taken from bookworm-backports (QEMU >= 8 has the igb NIC); see
# the lab block below. udev: systemd-udevd runs inside the guest for the udev hotplug source's test.
LAB_PACKAGES=(
  linux-image-amd64 linux-headers-amd64 linux-source-6.1
  busybox-static qemu-system-x86 iproute2 kmod zstd xz-utils cpio file udev
)

# --- The QEMU lab: bookworm-backports for a QEMU with the igb SR-IOV NIC (--test only) -------
# Adds the bookworm-backports suite on the same mirror as the system's Debian archive (it is
# NotAutomatic: nothing else is taken from it unless asked) and installs qemu-system-x86 from it,
# before the generic install below would take bookworm's. When backports cannot be had,
# bookworm's QEMU 7.2 is installed below and the lab skips its igb tests; under CI=true, where
# nothing may skip, that is an error (checked after the install, below).
if [ "$want_test" = 1 ] && [ "$(. /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-}")" = bookworm ]; then
  bpo_list=/etc/apt/sources.list.d/sriovd-lab-backports.sources
  if ! grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null; then
    # The mirror of the main archive: the first Debian URI that is not the security archive.
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
             | grep -E '^(URIs:|deb )' | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security \
             | head -n1 | tr -d ' ' || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    echo "install-deps: adding bookworm-backports from ${mirror%/}"
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "${mirror%/}" | $SUDO tee "$bpo_list" >/dev/null
    if ! $SUDO apt-get update -q; then
      echo "install-deps: warning: bookworm-backports unreachable; removing it again (lab igb tests will skip)" >&2
      $SUDO rm -f "$bpo_list"
      $SUDO apt-get update -q || true
    fi
  fi
  bpo_candidate() {
    apt-cache madison qemu-system-x86 2>/dev/null | awk -F'|' '/bookworm-backports/ {gsub(/ /,"",$2); print $2; exit}'
  }
  qemu_have=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)
  qemu_bpo=$(bpo_candidate)
  if [ -z "$qemu_bpo" ] && [ -z "$qemu_have" ]; then $SUDO apt-get update -q || true; qemu_bpo=$(bpo_candidate); fi
  if [ -n "$qemu_bpo" ] && [ "$qemu_have" != "$qemu_bpo" ]; then
    echo "install-deps: qemu-system-x86 $qemu_bpo from bookworm-backports (for the igb NIC)"
    $SUDO apt-get install -y -q --no-install-recommends -t bookworm-backports qemu-system-x86 \
      || echo "install-deps: warning: QEMU from bookworm-backports failed; keeping ${qemu_have:-bookworm's} (lab igb tests will skip)" >&2
  elif [ -z "$qemu_bpo" ]; then
    echo "install-deps: bookworm-backports has no qemu-system-x86 here; using ${qemu_have:-bookworm's} (lab igb tests will skip)"
  fi
fi
# --- end of the QEMU lab block ----------------------------------------------------------------

missing=()
check() {
  for p in "$@"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
  done
}
check "${BUILD_PACKAGES[@]}"
if [ "$want_test" = 1 ]; then check "${TEST_PACKAGES[@]}" ${LAB_PACKAGES[@]+"${LAB_PACKAGES[@]}"}; fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
echo "install-deps: all packages present"

# The lab's igb tests need a QEMU that has the device; elsewhere they skip, under CI they must run.
if [ "$want_test" = 1 ] && [ "${CI:-}" = true ]; then
  qemu=$(command -v qemu-system-x86_64 || true)
  if [ -z "$qemu" ] || ! "$qemu" -device help 2>/dev/null | grep -q '"igb"'; then
    echo "install-deps: CI=true: ${qemu:-qemu-system-x86_64} has no igb device; the lab's igb tests need QEMU >= 8 from bookworm-backports" >&2
    exit 1
  fi
fi

# The OpenAPI lint (npx @redocly/cli) needs Node.js with npm; keep any Node.js already present.
if [ "$want_test" = 1 ] && ! command -v npx >/dev/null 2>&1; then
  $SUDO apt-get install -y -q --no-install-recommends nodejs npm
fi

if [ "$want_test" = 1 ]; then
  here=$(cd "$(dirname "$0")/.." && pwd)
  if [ ! -x "$here/tools/node_modules/.bin/redocly" ]; then
    echo "install-deps: installing the OpenAPI linter into tools/"
    (cd "$here/tools" && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
