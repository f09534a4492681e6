"""A kubelet simulator for sriovd-k8s tests, written with Python grpcio.

It plays kubelet's side of the device-plugin protocol: it serves Registration on
<dir>/kubelet.sock and PodResourcesLister on its own socket, connects to the plugins that
register, and drives their DevicePlugin service. Stubs are generated at run time from the
project's own .proto files (k8s/proto) with grpc_tools.protoc, so the test checks our
definitions, not a copy. Waits block on queues and gRPC streams with deadlines; nothing sleeps.
"""

import atexit
import os
import shutil
import queue
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc
from grpc_tools import protoc

_stubs = None


def load_stubs(source_dir):
    """Generates Python stubs for k8s/proto/*.proto into a temp dir and imports them."""
    global _stubs
    if _stubs is not None:
        return _stubs
    out = tempfile.mkdtemp(prefix="sriovd-k8s-stubs.")
    # The modules are imported once, at load; the directory is not needed after the process.
    atexit.register(shutil.rmtree, out, True)
    for name in ("deviceplugin", "podresources"):
        proto = os.path.join(source_dir, "k8s", "proto", name + ".proto")
        rc = protoc.main(["protoc", "-I" + source_dir, "--python_out=" + out, "--grpc_python_out=" + out, proto])
        if rc != 0:
            raise RuntimeError("grpc_tools.protoc failed on %s" % proto)
    sys.path.insert(0, out)
    from k8s.proto import deviceplugin_pb2, deviceplugin_pb2_grpc, podresources_pb2, podresources_pb2_grpc

    class Stubs:
        dp = deviceplugin_pb2
        dp_grpc = deviceplugin_pb2_grpc
        pr = podresources_pb2
        pr_grpc = podresources_pb2_grpc

    _stubs = Stubs
    return Stubs


class Deadline(Exception):
    pass


class Kubelet:
    """Registration + PodResources servers, and the pods kubelet would report."""

    def __init__(self, source_dir, plugin_dir, pod_resources_socket):
        self.s = load_stubs(source_dir)
        self.plugin_dir = plugin_dir
        self.pod_resources_socket = pod_resources_socket
        self.registrations = queue.Queue()
        self._pods = {}  # pod name -> {resource: [device ids]}
        self._lock = threading.Lock()
        self._reg_server = None
        self._pr_server = None
        self.list_calls = 0

    # -- Registration --------------------------------------------------------------------------
    def start(self):
        os.makedirs(self.plugin_dir, exist_ok=True)
        s = self.s
        kubelet = self

        class Registration(s.dp_grpc.RegistrationServicer):
            def Register(self, request, context):
                kubelet.registrations.put(request)
                return s.dp.Empty()

        class PodResources(s.pr_grpc.PodResourcesListerServicer):
            def List(self, request, context):
                return kubelet._list()

        self._reg_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        s.dp_grpc.add_RegistrationServicer_to_server(Registration(), self._reg_server)
        self._reg_server.add_insecure_port("unix:" + os.path.join(self.plugin_dir, "kubelet.sock"))
        self._reg_server.start()
        if self._pr_server is None:
            self._pr_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
            s.pr_grpc.add_PodResourcesListerServicer_to_server(PodResources(), self._pr_server)
            self._pr_server.add_insecure_port("unix:" + self.pod_resources_socket)
            self._pr_server.start()

    def restart(self):
        """What kubelet does when it restarts: its old socket goes, every plugin socket in the
        dir is deleted, and a new kubelet.sock is created."""
        self._reg_server.stop(None).wait()
        for name in os.listdir(self.plugin_dir):
            path = os.path.join(self.plugin_dir, name)
            if os.path.exists(path):
                os.unlink(path)
        self.start()

    def stop(self):
        for srv in (self._reg_server, self._pr_server):
            if srv is not None:
                srv.stop(None).wait()

    def next_registration(self, timeout):
        try:
            return self.registrations.get(timeout=timeout)
        except queue.Empty:
            raise Deadline("no Register call within %.1f s" % timeout)

    # -- PodResources --------------------------------------------------------------------------
    def set_pod(self, name, resources):
        with self._lock:
            self._pods[name] = {k: list(v) for k, v in resources.items()}

    def remove_pod(self, name):
        with self._lock:
            self._pods.pop(name, None)

    def _list(self):
        pr = self.s.pr
        with self._lock:
            self.list_calls += 1
            resp = pr.ListPodResourcesResponse()
            for name, resources in self._pods.items():
                pod = resp.pod_resources.add(name=name, namespace="default")
                c = pod.containers.add(name="main")
                for res, ids in resources.items():
                    c.devices.add(resource_name=res, device_ids=ids)
            return resp

    # -- the plugin side -----------------------------------------------------------------------
    def connect(self, endpoint):
        return Plugin(self.s, os.path.join(self.plugin_dir, endpoint))


class Plugin:
    """A connection to one registered plugin; ListAndWatch runs on a thread into a queue."""

    def __init__(self, stubs, socket_path):
        self.s = stubs
        self.channel = grpc.insecure_channel("unix:" + socket_path)
        self.stub = stubs.dp_grpc.DevicePluginStub(self.channel)
        self.lists = queue.Queue()
        self.latest = None
        self._stream = None

    def options(self):
        return self.stub.GetDevicePluginOptions(self.s.dp.Empty(), timeout=5)

    def watch(self):
        self._stream = self.stub.ListAndWatch(self.s.dp.Empty())

        def pump():
            try:
                for resp in self._stream:
                    self.lists.put(resp)
            except grpc.RpcError:
                pass
            self.lists.put(None)  # the stream ended

        threading.Thread(target=pump, daemon=True).start()

    def wait_list(self, pred, timeout, what):
        """Blocks until a ListAndWatch answer satisfies pred (a dict id -> (health, numa));
        returns it and the seconds it took."""
        start = time.monotonic()
        deadline = start + timeout
        if self.latest is not None and pred(self.latest):
            return self.latest, 0.0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Deadline("%s: not seen within %.1f s; last list %r" % (what, timeout, self.latest))
            try:
                resp = self.lists.get(timeout=left)
            except queue.Empty:
                continue
            if resp is None:
                raise Deadline("%s: ListAndWatch ended; last list %r" % (what, self.latest))
            self.latest = {d.ID: (d.health, [n.ID for n in d.topology.nodes]) for d in resp.devices}
            if pred(self.latest):
                return self.latest, time.monotonic() - start

    def preferred(self, available, must_include, size):
        dp = self.s.dp
        req = dp.PreferredAllocationRequest()
        req.container_requests.add(available_deviceIDs=available, must_include_deviceIDs=must_include,
                                   allocation_size=size)
        return list(self.stub.GetPreferredAllocation(req, timeout=10).container_responses[0].deviceIDs)

    def allocate(self, *containers):
        dp = self.s.dp
        req = dp.AllocateRequest()
        for ids in containers:
            req.container_requests.add(devices_ids=ids)
        return self.stub.Allocate(req, timeout=30)

    def close(self):
        if self._stream is not None:
            self._stream.cancel()
        self.channel.close()
