"""The real sriovd daemon on a simulated host, for the sriovd-k8s tests: a fake sysfs tree from
sriovd-fakehost, `sriovd serve --sim` started with NOTIFY_SOCKET so readiness is the READY=1
datagram (no sleeping), a REST client over its unix socket, and a follower of its event stream.
"""

import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class Answer:
    def __init__(self, status, body):
        self.status = status
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "HTTP %d %s" % (self.status, self.body[:400])


class Sriovd:
    def __init__(self, bins, workdir, profile="dual-socket"):
        self.bins = bins
        self.dir = workdir
        self.sys = os.path.join(workdir, "sys")
        self.state = os.path.join(workdir, "state")
        self.sock = os.path.join(workdir, "sriovd.sock")
        self.proc = None
        self.log = os.path.join(workdir, "sriovd.log")
        subprocess.run([bins["fakehost"], "--profile", profile, "--out", self.sys], check=True,
                       stdout=subprocess.DEVNULL)

    def start(self, deadline=30):
        notify_path = os.path.join(self.dir, "notify.sock")
        if os.path.exists(notify_path):
            os.unlink(notify_path)
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(notify_path)
        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        self.proc = subprocess.Popen(
            [self.bins["sriovd"], "serve", "--sim", "--sysfs-root", self.sys, "--state-dir", self.state,
             "--listen", "unix:" + self.sock],
            env=env, stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))
        end = time.monotonic() + deadline
        try:
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    raise RuntimeError("sriovd not ready within %d s; log:\n%s" % (deadline, self.log_text()))
                ns.settimeout(min(left, 0.5))
                try:
                    msg = ns.recv(4096).decode()
                except socket.timeout:
                    if self.proc.poll() is not None:
                        raise RuntimeError("sriovd exited with %d; log:\n%s" % (self.proc.returncode, self.log_text()))
                    continue
                if "READY=1" in msg.split("\n"):
                    return
        finally:
            ns.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        return self.proc.returncode if self.proc else None

    def log_text(self):
        try:
            with open(self.log) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def request(self, method, path, body=None, headers=None):
        conn = UnixHTTPConnection(self.sock)
        h = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body)
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        out = Answer(r.status, r.read().decode())
        conn.close()
        return out

    def ok(self, method, path, body=None):
        a = self.request(method, path, body)
        if a.status // 100 != 2:
            raise AssertionError("%s %s: %r" % (method, path, a))
        return a.json

    def sim_resets(self, address):
        """How many function resets the simulated kernel recorded for a device."""
        try:
            with open(os.path.join(self.sys, ".sriovd-sim", "state.json")) as f:
                return json.load(f).get("resets", {}).get(address, 0)
        except OSError:
            return 0


class Events:
    """Follows GET /v1/events on a thread; events go into a queue as dicts."""

    def __init__(self, sriovd):
        self.q = queue.Queue()
        self.conn = UnixHTTPConnection(sriovd.sock, timeout=None)
        self.conn.request("GET", "/v1/events", headers={"Accept": "text/event-stream"})
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise AssertionError("GET /v1/events: HTTP %d" % self.resp.status)
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        data, etype = [], None
        try:
            while True:
                line = self.resp.fp.readline()
                if not line:
                    break
                line = line.decode().rstrip("\r\n")
                if line == "":
                    if data:
                        try:
                            ev = json.loads("\n".join(data))
                        except ValueError:
                            ev = {"raw": "\n".join(data)}
                        ev.setdefault("type", etype)
                        self.q.put(ev)
                    data, etype = [], None
                elif line.startswith(":"):
                    continue
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip(" ") if line[5:6] == " " else line[5:])
                elif line.startswith("event:"):
                    etype = line[6:].strip()
        except (OSError, ValueError):
            pass
        self.q.put(None)

    def wait_for(self, pred, timeout, what):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("%s: no such sriovd event within %.1f s" % (what, timeout))
            try:
                ev = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if ev is None:
                raise AssertionError("%s: sriovd's event stream ended" % what)
            if pred(ev):
                return ev

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()
