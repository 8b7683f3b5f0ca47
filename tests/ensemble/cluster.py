"""Ensembles on loopback for the tests: rookeeper and Apache ZooKeeper 3.8
servers, any mix, each in its own directory with zoo.cfg and myid.

  c = Cluster(["rookeeper", "apache", "rookeeper"], binary, work)
  c.start_all(); c.wait_serving(); ... c.stop_all()

Every wait is bounded; stop_all() always leaves no process behind.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from loopback import four, free_port  # noqa: E402  (four: re-exported)

J = "/usr/share/java"
APACHE_CP = ":".join(
    f"{J}/{j}.jar"
    for j in ["zookeeper", "netty-codec", "netty-resolver", "servlet-api", "slf4j-log4j12", "log4j-1.2"]
)


def mode(port):
    for line in four(port, "srvr").splitlines():
        if line.startswith("Mode: "):
            return line[6:].strip()
    return None


class Server:
    def __init__(self, sid, kind, work, binary, ports, servers_text, tick=200, props=(), extra=""):
        self.sid, self.kind, self.binary = sid, kind, binary
        self.props = [f"-D{p}" for p in props]
        self.dir = os.path.join(work, f"s{sid}")
        self.client_port = ports[0]
        self.ports = ports
        self.proc = None
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        with open(os.path.join(self.dir, "data", "myid"), "w") as f:
            f.write(f"{sid}\n")
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        with open(self.cfg, "w") as f:
            f.write(
                f"tickTime={tick}\ninitLimit=10\nsyncLimit=5\n"
                f"dataDir={self.dir}/data\nclientPort={self.client_port}\n"
                "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
                "4lw.commands.whitelist=*\nmaxSessionTimeout=60000\n"
                + extra
                + servers_text
            )
        with open(os.path.join(self.dir, "log4j.properties"), "w") as f:
            f.write(
                "log4j.rootLogger=INFO, C\nlog4j.appender.C=org.apache.log4j.ConsoleAppender\n"
                "log4j.appender.C.layout=org.apache.log4j.PatternLayout\n"
                "log4j.appender.C.layout.ConversionPattern=%d{ISO8601} %-5p [%t] %c{1} - %m%n\n"
            )

    def start(self):
        log = open(os.path.join(self.dir, "server.log"), "a")
        if self.kind == "apache":
            cmd = [
                "java", "-Xmx256m", "-cp", APACHE_CP,
                f"-Dlog4j.configuration=file:{self.dir}/log4j.properties",
                "-Dzookeeper.admin.enableServer=false",
                *self.props,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", self.cfg,
            ]
        else:
            cmd = [self.binary, "server", *self.props, self.cfg]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def mode(self):
        return mode(self.client_port)

    def log_tail(self, n=40):
        try:
            with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class Cluster:
    def __init__(self, kinds, binary, work, observers=(), tick=200, props=(), extra="", own_hosts=False):
        """own_hosts: server i's quorum and election ports are on 127.0.0.i
        (a port every server binds at its own address, as
        observerMasterPort is, needs that on one machine); clients always
        connect at 127.0.0.1."""
        self.work = work
        ports = {i: (free_port(), free_port(), free_port()) for i in range(1, len(kinds) + 1)}
        lines = []
        for i, (c, q, e) in ports.items():
            role = "observer" if i in observers else "participant"
            host = f"127.0.0.{i}" if own_hosts else "127.0.0.1"
            lines.append(f"server.{i}={host}:{q}:{e}:{role};127.0.0.1:{c}\n")
        text = "".join(lines)
        self.servers = {
            i: Server(i, kind, work, binary, ports[i], text, tick, props, extra)
            for i, kind in enumerate(kinds, start=1)
        }

    def start_all(self):
        for s in self.servers.values():
            s.start()

    def stop_all(self):
        for s in self.servers.values():
            s.stop()

    @contextlib.contextmanager
    def failing_with_stacks(self, stop=None):
        """Around a scenario: on failure, thread stacks of the live servers
        first; always, the writers stopped (`stop`) and every server too."""
        try:
            yield self
        except Exception:
            self.dump_stacks()
            raise
        finally:
            if stop is not None:
                stop.set()
            self.stop_all()

    def dump_stacks(self):
        """Thread stacks of every live rookeeper server into sN/stacks.txt
        (for a scenario that failed: a stall shows where it waits)."""
        if not shutil.which("gdb"):
            return
        for s in self.servers.values():
            if s.kind != "rookeeper" or not s.running():
                continue
            with open(os.path.join(s.dir, "stacks.txt"), "w") as out:
                subprocess.run(
                    ["gdb", "-batch", "-p", str(s.proc.pid), "-ex", "thread apply all bt"],
                    stdout=out, stderr=subprocess.STDOUT, timeout=120, check=False,
                )

    def hosts(self, ids=None):
        ids = ids or list(self.servers)
        return ",".join(f"127.0.0.1:{self.servers[i].client_port}" for i in ids)

    def modes(self):
        return {i: s.mode() if s.running() else None for i, s in self.servers.items()}

    def leader(self):
        for i, m in self.modes().items():
            if m == "leader":
                return i
        return None

    def wait_serving(self, timeout=60, ids=None):
        """Until every running server (or `ids`) reports leader, follower or
        observer, with exactly one leader."""
        deadline = time.time() + timeout
        ids = ids or [i for i, s in self.servers.items() if s.running()]
        last = None
        while time.time() < deadline:
            m = {i: self.servers[i].mode() for i in ids}
            last = m
            if all(v in ("leader", "follower", "observer") for v in m.values()) and list(
                m.values()
            ).count("leader") <= 1 and (list(m.values()).count("leader") == 1 or self.leader()):
                return m
            time.sleep(0.2)
        tails = "\n".join(f"--- server {i} ({s.kind})\n{s.log_tail()}" for i, s in self.servers.items())
        raise AssertionError(f"ensemble not serving within {timeout}s: {last}\n{tails}")
