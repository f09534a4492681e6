#!/usr/bin/env python3
"""sriovd-k8s footprint: the sidecar's resident memory serving a pool of 128 VFs.

The real sriovd (--sim, the `large` fake host: 16 PFs x 63 VFs) gets a pool of 128 VFs (two PFs
whole and two VFs of a third); the sidecar registers it with the kubelet simulator of
tests/k8s, kubelet reads the 128-device list, asks for a preferred allocation and allocates
8 devices; then VmRSS and VmHWM of the sidecar are read from /proc. Prints a Markdown section
for bench/RESULTS.md.

usage: k8s_footprint.py BUILD_DIR
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
source = os.path.dirname(here)
sys.path.insert(0, os.path.join(source, "tests", "k8s"))
from kubelet_sim import Kubelet  # noqa: E402
from sriovd_host import Sriovd  # noqa: E402

TARGET_KIB = 16 * 1024


def status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                out[k] = int(v.split()[0])
    return out


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(source, "build"))
    bins = {"sriovd": os.path.join(build, "daemon", "sriovd"),
            "fakehost": os.path.join(build, "tests", "fixtures", "sriovd-fakehost")}
    sidecar_bin = os.path.join(build, "k8s", "sriovd-k8s")
    work = tempfile.mkdtemp(prefix="sriovd-k8s-bench.", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    sriovd = Sriovd(bins, work, profile="large")
    kubelet = Kubelet(source, os.path.join(work, "device-plugins"), os.path.join(work, "pod-resources.sock"))
    proc = None
    try:
        sriovd.start()
        pfs = [d for d in sriovd.ok("GET", "/v1/devices?class_id=02")["devices"]
               if d.get("sriov") and d["sriov"]["num_vfs"] >= 63 and d["netdevs"]]
        names = [pfs[0]["netdevs"][0], pfs[1]["netdevs"][0], pfs[2]["netdevs"][0] + "#0-1"]
        sriovd.ok("POST", "/v1/pools", {"name": "bench", "selectors": {"pf_names": names}, "mode": "vfio"})
        pool = sriovd.ok("GET", "/v1/pools/bench")
        n = len(pool["devices"])
        if n != 128:
            raise SystemExit("bench pool has %d devices, not 128" % n)
        kubelet.start()
        proc = subprocess.Popen([sidecar_bin, "--kubelet-dir", kubelet.plugin_dir, "--pod-resources-socket",
                                 kubelet.pod_resources_socket, "--sriovd-socket", sriovd.sock],
                                stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "sidecar.log"), "wb"))
        reg = kubelet.next_registration(30)
        plugin = kubelet.connect(reg.endpoint)
        plugin.watch()
        lst, _ = plugin.wait_list(lambda l: len(l) == 128, 30, "128 devices")
        ids = sorted(lst)
        chosen = plugin.preferred(ids, [], 8)
        plugin.allocate(chosen)
        plugin.wait_list(lambda l: len(l) == 128, 5, "list after allocation")
        st = status(proc.pid)
        ok = st["VmHWM"] <= TARGET_KIB
        print("## sriovd-k8s footprint with a 128-VF pool (target: RSS <= 16 MiB)")
        print()
        print("`python3 bench/k8s_footprint.py build`: sriovd `--sim` on the `large` host with one pool of "
              "128 VFs; the sidecar registered with the kubelet simulator, its ListAndWatch read (128 devices), "
              "a preferred allocation and an Allocate of 8 VFs done; then `/proc/<pid>/status`. For "
              "comparison, the upstream SR-IOV network device plugin's DaemonSet requests 40 MiB.")
        print()
        print("| figure | value |")
        print("|---|---|")
        print("| VmRSS | %.1f MiB |" % (st["VmRSS"] / 1024))
        print("| VmHWM (peak) | %.1f MiB |" % (st["VmHWM"] / 1024))
        print("| of which anonymous / file-backed | %.1f / %.1f MiB |" % (st["RssAnon"] / 1024, st["RssFile"] / 1024))
        print("| threads | %d |" % st["Threads"])
        print()
        print("Peak RSS **%.1f MiB** (%s)." % (st["VmHWM"] / 1024, "within the target" if ok else "over the target"))
        plugin.close()
        return 0 if ok else 1
    finally:
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        kubelet.stop()
        sriovd.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
