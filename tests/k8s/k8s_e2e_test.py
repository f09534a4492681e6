#!/usr/bin/env python3
"""sriovd-k8s end to end: the real sriovd daemon (--sim, on a fake dual-socket host), the real
sriovd-k8s sidecar, and a kubelet simulator (kubelet_sim.py) playing kubelet over gRPC.

Covers registration, ListAndWatch with NUMA topology and live health (a group turning viable
and not, the PF's carrier lost and back, a VF leased to a VM, a VF hot-unplugged), GetPreferredAllocation,
Allocate (env, vfio device specs, CDI, the device-info files Multus reads), refusal of a VM's device with rollback, a kubelet
restart, a sidecar restart (leases adopted, not leaked), a sriovd restart (reconnect and
resync), and a pod going away (leases released, VFs reset by sriovd).

usage: k8s_e2e_test.py --source DIR --sriovd BIN --fakehost BIN --sidecar BIN
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import grpc

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from kubelet_sim import Kubelet  # noqa: E402
from sriovd_host import Events, Sriovd  # noqa: E402

# The bound for a health change to reach kubelet. Measured figures are printed.
HEALTH_DEADLINE = 1.0
REGISTER_DEADLINE = 1.0

FAST_PF = "0000:3b:00.0"  # ens2f0, 4 VFs, in pool "fast"
GPU = "0000:87:00.0"      # shares its IOMMU group with its audio function 87:00.1
GPU_AUDIO = "0000:87:00.1"


def step(msg):
    print("--", msg, flush=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


class Sidecar:
    def __init__(self, binary, workdir, kubelet, sriovd):
        self.binary = binary
        self.workdir = workdir
        self.kubelet = kubelet
        self.sriovd = sriovd
        self.proc = None
        self.log = os.path.join(workdir, "sidecar.log")

    def start(self, *extra):
        argv = [self.binary, "--kubelet-dir", self.kubelet.plugin_dir, "--pod-resources-socket",
                self.kubelet.pod_resources_socket, "--sriovd-socket", self.sriovd.sock,
                "--device-info-dir", self.devinfo_dir(),
                "--release-interval", "0.2", "--release-grace", "1", "--log-level", "debug", *extra]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))

    def devinfo_dir(self):
        return os.path.join(self.workdir, "devinfo", "dp")

    def devinfo(self):
        """The device-info files in the directory: {file name: content}."""
        d = self.devinfo_dir()
        if not os.path.isdir(d):
            return {}
        out = {}
        for name in os.listdir(d):
            with open(os.path.join(d, name)) as f:
                out[name] = json.load(f)
        return out

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        return self.proc.returncode

    def log_text(self):
        with open(self.log) as f:
            return f.read()[-6000:]


def registrations(kubelet, n, deadline):
    start = time.monotonic()
    regs = {}
    while len(regs) < n:
        left = deadline - (time.monotonic() - start)
        r = kubelet.next_registration(max(left, 0.01))
        regs[r.resource_name] = r
    return regs, time.monotonic() - start


def devinfo_file(resource, address):
    """device-info spec 1.1.0 section 4.1: <resourceName, "/" as "-">-<deviceID>-device.json"""
    return "%s-%s-device.json" % (resource.replace("/", "-"), address)


def vf_devinfo(address, pf):
    return {"type": "pci", "version": "1.1.0", "pci": {"pci-address": address, "pf-pci-address": pf}}


def pod_leases(sriovd, pool):
    return {l["address"]: l for l in sriovd.ok("GET", "/v1/allocations?pool=%s&consumer_kind=pod" % pool)["allocations"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--sriovd", required=True)
    ap.add_argument("--fakehost", required=True)
    ap.add_argument("--sidecar", required=True)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="sriovd-k8s-e2e.", dir=os.environ.get("TMPDIR"))
    sriovd = Sriovd({"sriovd": args.sriovd, "fakehost": args.fakehost}, work)
    kubelet = Kubelet(args.source, os.path.join(work, "device-plugins"), os.path.join(work, "pod-resources.sock"))
    sidecar = Sidecar(args.sidecar, work, kubelet, sriovd)
    events = None
    ok = False
    try:
        sriovd.start()
        events = Events(sriovd)
        step("pools in sriovd: 'fast' (the VFs of ens2f0) and 'gpu' (a GPU whose group is shared)")
        pf = sriovd.ok("GET", "/v1/devices/" + FAST_PF)
        vfs = sorted(d["address"] for d in sriovd.ok("GET", "/v1/devices?physfn=" + FAST_PF)["devices"])
        check(len(vfs) == 4, "fixture: expected 4 VFs on %s, got %r" % (FAST_PF, vfs))
        numa = {a: sriovd.ok("GET", "/v1/devices/" + a)["numa_node"] for a in vfs}
        sriovd.ok("POST", "/v1/pools", {"name": "fast", "selectors": {"pf_names": [pf["netdevs"][0]]},
                                        "mode": "vfio", "policy": "pack", "health": {"pf_link": True}})
        sriovd.ok("POST", "/v1/pools", {"name": "gpu", "selectors": {"addresses": [GPU]}, "device_type": "pf",
                                       "mode": "vfio"})
        vf0, vf1, vf2, vf3 = vfs

        kubelet.start()
        sidecar.start()

        step("registration: one resource per pool, v1beta1, endpoint in the kubelet dir, preferred allocation on")
        regs, _ = registrations(kubelet, 2, 20)
        check(set(regs) == {"sriovd.io/fast", "sriovd.io/gpu"}, "resources: %r" % list(regs))
        for r in regs.values():
            check(r.version == "v1beta1", "version %r" % r.version)
            check("/" not in r.endpoint and os.path.exists(os.path.join(kubelet.plugin_dir, r.endpoint)),
                  "endpoint %r is not a socket file in the kubelet dir" % r.endpoint)
            check(r.options.get_preferred_allocation_available, "options: %r" % r.options)
        fast = kubelet.connect(regs["sriovd.io/fast"].endpoint)
        gpu = kubelet.connect(regs["sriovd.io/gpu"].endpoint)
        check(fast.options().get_preferred_allocation_available, "GetDevicePluginOptions")

        step("ListAndWatch: one device per member, ID = PCI address, topology = NUMA node")
        fast.watch()
        lst, _ = fast.wait_list(lambda l: set(l) == set(vfs), 10, "fast lists its 4 VFs")
        for a in vfs:
            check(lst[a][0] == "Healthy", "%s: %r" % (a, lst[a]))
            check(lst[a][1] == ([numa[a]] if numa[a] is not None else []), "%s topology %r" % (a, lst[a]))

        step("health is live: the GPU turns Healthy when its group becomes viable, Unhealthy when not")
        gpu.watch()
        gpu.wait_list(lambda l: l.get(GPU, ("",))[0] == "Unhealthy", 10, "GPU unhealthy (audio on a host driver)")
        sriovd.ok("PUT", "/v1/devices/%s/driver" % GPU_AUDIO, {"driver": "vfio-pci"})
        _, took = gpu.wait_list(lambda l: l.get(GPU, ("",))[0] == "Healthy", HEALTH_DEADLINE, "GPU healthy")
        print("   health change reached kubelet in %.0f ms" % (took * 1000))
        sriovd.ok("PUT", "/v1/devices/%s/driver" % GPU_AUDIO, {"driver": "host"})
        _, took = gpu.wait_list(lambda l: l.get(GPU, ("",))[0] == "Unhealthy", HEALTH_DEADLINE, "GPU unhealthy again")
        print("   health change reached kubelet in %.0f ms" % (took * 1000))

        step("PF link health: the uplink's carrier lost, every VF of it Unhealthy; back, Healthy")
        sim_link = [args.sriovd, "simulate-link", pf["netdevs"][0], "down", "--sysfs-root", sriovd.sys]
        subprocess.run(sim_link, check=True)
        _, took = fast.wait_list(lambda l: all(l[a][0] == "Unhealthy" for a in vfs), HEALTH_DEADLINE,
                                 "VFs unhealthy without carrier")
        print("   carrier loss reached kubelet in %.0f ms" % (took * 1000))
        member = sriovd.ok("GET", "/v1/pools/fast")["devices"][0]
        check("has no carrier" in member["reason"] and pf["netdevs"][0] in member["reason"], "reason %r" % member)
        check(sriovd.ok("GET", "/v1/devices/" + vf0)["pf_link"] == {"carrier": False, "operstate": "down"},
              "pf_link of %s" % vf0)
        sim_link[3] = "up"
        subprocess.run(sim_link, check=True)
        _, took = fast.wait_list(lambda l: all(l[a][0] == "Healthy" for a in vfs), HEALTH_DEADLINE,
                                 "VFs healthy with carrier")
        print("   carrier back reached kubelet in %.0f ms" % (took * 1000))

        step("GetPreferredAllocation: must_include first, then the same PF and NUMA node")
        pref = fast.preferred(vfs, [vf3], 2)
        check(len(pref) == 2 and pref[0] == vf3 and set(pref) <= set(vfs), "preferred %r" % pref)

        step("Allocate: a pod lease per device, env, vfio device specs")
        resp = fast.allocate([vf0, vf1])
        c = resp.container_responses[0]
        check(c.envs["PCIDEVICE_SRIOVD_IO_FAST"] == "%s,%s" % (vf0, vf1), "env %r" % dict(c.envs))
        info = json.loads(c.envs["PCIDEVICE_SRIOVD_IO_FAST_INFO"])
        groups = {a: sriovd.ok("GET", "/v1/devices/" + a)["iommu_group"] for a in (vf0, vf1)}
        for a in (vf0, vf1):
            check(info[a]["vfio"]["dev-mount"] == "/dev/vfio/%d" % groups[a], "INFO %r" % info)
        specs = {(d.container_path, d.host_path, d.permissions) for d in c.devices}
        want = {("/dev/vfio/vfio", "/dev/vfio/vfio", "rw")} | {
            ("/dev/vfio/%d" % g, "/dev/vfio/%d" % g, "rw") for g in groups.values()}
        check(specs == want, "device specs %r, want %r" % (specs, want))
        leases = pod_leases(sriovd, "fast")
        check(set(leases) == {vf0, vf1}, "pod leases %r" % list(leases))
        for a in (vf0, vf1):
            check(leases[a]["consumer"]["kind"] == "pod", "lease %r" % leases[a])
            check(sriovd.ok("GET", "/v1/devices/" + a)["driver"] == "vfio-pci", "%s not on vfio-pci" % a)
        kubelet.set_pod("p1", {"sriovd.io/fast": [vf0, vf1]})

        step("device-info files (spec 1.1.0) for Multus and sriov-cni: one per allocated device")
        want_info = {devinfo_file("sriovd.io/fast", a): vf_devinfo(a, FAST_PF) for a in (vf0, vf1)}
        check(sidecar.devinfo() == want_info, "device-info files %r, want %r" % (sidecar.devinfo(), want_info))

        step("a device leased to a VM turns Unhealthy and Allocate refuses it, releasing what it took")
        vm = sriovd.ok("POST", "/v1/allocations", {"pool": "fast", "address": vf3,
                                                   "consumer": {"kind": "vm", "name": "web1"}})
        _, took = fast.wait_list(lambda l: l[vf3][0] == "Unhealthy", HEALTH_DEADLINE, "VM's VF unhealthy")
        print("   lease to a VM reached kubelet in %.0f ms" % (took * 1000))
        try:
            fast.allocate([vf2, vf3])
            raise AssertionError("Allocate of a VM's device succeeded")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.FAILED_PRECONDITION, "code %r" % e.code())
            check(vf3 in e.details() and "vm 'web1'" in e.details(), "message %r" % e.details())
        check(set(pod_leases(sriovd, "fast")) == {vf0, vf1}, "rollback: vf2's lease was not released")
        check(sriovd.ok("GET", "/v1/devices/" + vf2)["lease"] is None, "rollback: %s still leased" % vf2)
        check(sidecar.devinfo() == want_info, "rollback: device-info files %r" % list(sidecar.devinfo()))

        step("kubelet restart: plugin sockets deleted, kubelet.sock recreated; re-registered within 1 s")
        fast.close()
        gpu.close()
        kubelet.restart()
        regs, took = registrations(kubelet, 2, REGISTER_DEADLINE)
        print("   re-registered in %.0f ms" % (took * 1000))
        fast = kubelet.connect(regs["sriovd.io/fast"].endpoint)
        fast.watch()
        fast.wait_list(lambda l: set(l) == set(vfs) and l[vf3][0] == "Unhealthy", 10, "list after kubelet restart")

        step("sidecar restart (now with CDI): the pods' leases are adopted, not leaked nor released")
        fast.close()
        check(sidecar.stop() == 0, "sidecar exit status on SIGTERM")
        check(not os.path.exists(os.path.join(kubelet.plugin_dir, regs["sriovd.io/fast"].endpoint)),
              "sidecar left its socket behind")
        check(sidecar.devinfo() == {}, "a stopped sidecar left device-info files: %r" % list(sidecar.devinfo()))
        # A file of a device no pod holds, left by a sidecar that did not stop cleanly, and one of
        # another device plugin sharing the directory.
        stale = devinfo_file("sriovd.io/fast", vf3)
        other = devinfo_file("example.com/nics", "0000:5e:02.0")
        for name in (stale, other):
            with open(os.path.join(sidecar.devinfo_dir(), name), "w") as f:
                json.dump(vf_devinfo(vf3, FAST_PF), f)
        cdi_dir = os.path.join(work, "cdi")
        sidecar.start("--cdi-dir", cdi_dir)
        regs, _ = registrations(kubelet, 2, 20)
        fast = kubelet.connect(regs["sriovd.io/fast"].endpoint)
        fast.watch()
        fast.wait_list(lambda l: l.get(vf0, ("",))[0] == "Healthy" and l.get(vf1, ("",))[0] == "Healthy"
                       and l.get(vf3, ("",))[0] == "Unhealthy", 10, "adopted leases Healthy, the VM's not")
        check(set(pod_leases(sriovd, "fast")) == {vf0, vf1}, "leases after the sidecar restart")
        left = sidecar.devinfo()
        check(set(left) == set(want_info) | {other} and all(left[n] == want_info[n] for n in want_info),
              "device-info files after the restart (adopted leases' written, stale one gone): %r" % list(left))

        step("Allocate with CDI: a spec file (0.6.0, kind sriovd.io/fast) and CDI device names")
        c = fast.allocate([vf2]).container_responses[0]
        check([d.name for d in c.cdi_devices] == ["sriovd.io/fast=" + vf2], "cdi_devices %r" % c.cdi_devices)
        check(len(c.devices) == 0, "raw device specs with CDI: %r" % c.devices)
        with open(os.path.join(cdi_dir, "sriovd.io-fast.json")) as f:
            spec = json.load(f)
        check(spec["cdiVersion"] == "0.6.0" and spec["kind"] == "sriovd.io/fast", "spec header %r" % spec)
        g2 = sriovd.ok("GET", "/v1/devices/" + vf2)["iommu_group"]
        dev = [d for d in spec["devices"] if d["name"] == vf2]
        check(dev and dev[0]["containerEdits"]["deviceNodes"][0]["path"] == "/dev/vfio/%d" % g2, "spec %r" % dev)
        check([x for x in os.listdir(cdi_dir) if x.startswith(".")] == [], "temp files left in the CDI dir")
        kubelet.set_pod("p2", {"sriovd.io/fast": [vf2]})
        want_info[devinfo_file("sriovd.io/fast", vf2)] = vf_devinfo(vf2, FAST_PF)
        check({n: c for n, c in sidecar.devinfo().items() if n != other} == want_info,
              "device-info files after the CDI allocation: %r" % list(sidecar.devinfo()))

        step("sriovd restart: the sidecar reconnects to the event stream and resyncs")
        events.close()
        check(sriovd.stop() == 0, "sriovd exit status")
        sriovd.start()
        events = Events(sriovd)
        sriovd.ok("DELETE", "/v1/allocations/" + vm["id"])
        fast.wait_list(lambda l: l[vf3][0] == "Healthy", 15, "VM lease released after sriovd restart")

        step("hot-unplug: a VF taken from the host leaves the list within 1 s")
        subprocess.run([args.sriovd, "simulate-hotplug", "remove", vf3, "--sysfs-root", sriovd.sys], check=True,
                       stdout=subprocess.DEVNULL)
        _, took = fast.wait_list(lambda l: vf3 not in l and len(l) == 3, HEALTH_DEADLINE, "unplugged VF gone")
        print("   unplug reached kubelet in %.0f ms" % (took * 1000))

        step("a pod goes away: its leases are released and sriovd resets the VFs; other pods keep theirs")
        resets_before = {a: sriovd.sim_resets(a) for a in (vf0, vf1)}
        ids = {pod_leases(sriovd, "fast")[a]["id"] for a in (vf0, vf1)}
        kubelet.remove_pod("p1")
        released = set()

        def lease_id(e):
            lease = e.get("lease")
            return lease["id"] if isinstance(lease, dict) else lease

        while released != ids:
            ev = events.wait_for(lambda e: e.get("type") == "lease.released" and lease_id(e) in ids - released, 15,
                                 "lease.released for p1's VFs")
            released.add(lease_id(ev))
        left = pod_leases(sriovd, "fast")
        check(set(left) == {vf2}, "pod leases after p1 left: %r" % list(left))
        for a in (vf0, vf1):
            check(sriovd.ok("GET", "/v1/devices/" + a)["lease"] is None, "%s still leased" % a)
            check(sriovd.sim_resets(a) > resets_before[a], "%s was not reset" % a)
        # A lease's file goes before its release: once sriovd says released, it is gone.
        check(set(sidecar.devinfo()) == {devinfo_file("sriovd.io/fast", vf2), other},
              "device-info files after p1 left: %r" % list(sidecar.devinfo()))

        step("SIGTERM: the sidecar stops cleanly and removes its sockets")
        check(sidecar.stop() == 0, "sidecar exit status")
        socks = [x for x in os.listdir(kubelet.plugin_dir) if x != "kubelet.sock"]
        check(socks == [], "left in the kubelet dir: %r" % socks)
        check(set(sidecar.devinfo()) == {other}, "device-info files after SIGTERM: %r" % list(sidecar.devinfo()))
        ok = True
    except Exception:
        traceback.print_exc()
        print("---- sidecar log ----\n" + (sidecar.log_text() if os.path.exists(sidecar.log) else ""))
        print("---- sriovd log ----\n" + sriovd.log_text())
    finally:
        if events:
            events.close()
        sidecar.stop() if sidecar.proc else None
        kubelet.stop()
        sriovd.stop()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("kept", work)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
