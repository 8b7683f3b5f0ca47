"""deploy/ checked with what runs here (no Docker engine, no systemd as
init): the compose file parses and describes a 3-server ensemble, the
image's entrypoint turns each service's environment into zoo.cfg and myid,
and the image's CMD and the compose healthcheck, run as written (paths
moved into a temp dir, hosts onto loopback, ports onto free ones), form a
working ensemble; the systemd unit passes `systemd-analyze verify` and its
ExecStart serves and stops on the unit's KillSignal.

  python3 tests/deploy/deploy_test.py path/to/rookeeper

Every wait is bounded; every server started is stopped."""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DEPLOY = os.path.join(HERE, "..", "..", "deploy")
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
from loopback import four, free_port, wait_serving  # noqa: E402

WAIT = 60
passed = failed = 0


def check(name, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print(f"ok: {name}")
    except Exception as e:  # noqa: BLE001 - every failure is reported, then counted
        failed += 1
        print(f"FAILED: {name}: {e}")


def dockerfile():
    """ENTRYPOINT, CMD (exec form) and ENV of the runtime stage."""
    text = open(os.path.join(DEPLOY, "Dockerfile")).read()
    text = re.sub(r"\\\n", " ", text)
    out = {"env": {}}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("ENTRYPOINT "):
            out["entrypoint"] = json.loads(line[len("ENTRYPOINT "):])
        elif line.startswith("CMD "):
            out["cmd"] = json.loads(line[len("CMD "):])
        elif line.startswith("ENV "):
            for kv in shlex.split(line[len("ENV "):]):
                k, v = kv.split("=", 1)
                out["env"][k] = v
        elif line.startswith("COPY ") and "--from" not in line:
            src = line.split()[1]
            assert os.path.exists(os.path.join(DEPLOY, "..", src)), f"COPY source {src} missing"
    return out


def compose():
    with open(os.path.join(DEPLOY, "docker-compose.yml")) as f:
        return yaml.safe_load(f)


class Node:
    """One compose service run as a process: the entrypoint then CMD."""

    def __init__(self, binary, work, name, svc, image, remap):
        self.name, self.binary = name, binary
        self.root = os.path.join(work, name)
        self.dirs = {k: os.path.join(self.root, k) for k in ("conf", "data", "datalog", "logs")}
        for d in self.dirs.values():
            os.makedirs(d)
        env = dict(os.environ)
        env.update(image["env"])
        env.update({k: str(v) for k, v in svc["environment"].items()})
        env.update(ZOO_CONF_DIR=self.dirs["conf"], ZOO_DATA_DIR=self.dirs["data"],
                   ZOO_DATA_LOG_DIR=self.dirs["datalog"], ZOO_LOG_DIR=self.dirs["logs"])
        # Each container has its own network namespace; here the three share
        # one, so every port moves to a free one on 127.0.0.1.
        env["ZOO_SERVERS"] = remap(env["ZOO_SERVERS"])
        self.metrics = free_port()
        env["ZOO_METRICS_PORT"] = str(self.metrics)
        self.admin = free_port()
        env["ZOO_CFG_EXTRA"] = f"admin.serverPort={self.admin} admin.serverAddress=127.0.0.1"
        self.env = env
        self.image = image
        self.proc = None

    def path(self, p):
        """An image path in this node's temp dir, and `rookeeper` the binary."""
        if p == "rookeeper":
            return self.binary
        for k, d in self.dirs.items():
            if p == f"/{k}" or p.startswith(f"/{k}/"):
                return d + p[len(k) + 1:]
        return p

    def start(self):
        entry = [os.path.join(DEPLOY, os.path.basename(self.image["entrypoint"][0]))]
        cmd = entry + [self.path(a) for a in self.image["cmd"]]
        self.log = open(os.path.join(self.root, "out.log"), "w")
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

    def cfg(self):
        return open(os.path.join(self.dirs["conf"], "zoo.cfg")).read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


def ensemble(binary, work):
    image = dockerfile()
    assert image["entrypoint"] == ["/docker-entrypoint.sh"], image["entrypoint"]
    assert image["cmd"][:3] == ["rookeeper", "server", "start-foreground"], image["cmd"]
    spec = compose()
    services = spec["services"]
    assert sorted(services) == ["zoo1", "zoo2", "zoo3"], sorted(services)
    for name, svc in services.items():
        assert svc["hostname"] == name
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
        assert str(svc["environment"]["ZOO_MY_ID"]) == name[-1]
        assert any(p.endswith(":2181") for p in svc["ports"]), svc["ports"]
    servers = services["zoo1"]["environment"]["ZOO_SERVERS"].split()
    assert len(servers) == 3, servers
    ports = {}
    for name in services:
        ports[name] = (free_port(), free_port(), free_port())

    def remap(text):
        out = []
        for s in text.split():
            m = re.fullmatch(r"(server\.\d+)=(zoo\d):2888:3888;2181", s)
            assert m, f"unexpected server line {s}"
            q, e, c = ports[m.group(2)]
            out.append(f"{m.group(1)}=127.0.0.1:{q}:{e};127.0.0.1:{c}")
        return " ".join(out)

    nodes = [Node(binary, work, n, services[n], image, remap) for n in sorted(services)]
    return nodes, ports, services


def healthcheck(node, services):
    test = services[node.name]["healthcheck"]["test"]
    assert test[0] == "CMD", test
    args = [node.path(a) for a in test[1:]]
    p = subprocess.run(args, capture_output=True, text=True, timeout=30, env=node.env)
    return p.returncode, p.stdout + p.stderr


def compose_ensemble(binary, work):
    nodes, ports, services = ensemble(binary, work)
    try:
        for n in nodes:
            n.start()
        for n in nodes:
            wait_serving(ports[n.name][2], WAIT, n.proc)
        cfg = nodes[0].cfg()
        for want in ("metricsProvider.httpPort", "4lw.commands.whitelist=srvr,ruok,mntr,conf,stat",
                     "server.3=127.0.0.1:"):
            assert want in cfg, f"{want!r} not in the generated zoo.cfg:\n{cfg}"
        for n in nodes:
            assert open(os.path.join(n.dirs["data"], "myid")).read().strip() == n.name[-1]
        # The healthcheck passes once an election is over.
        modes = {}
        deadline = time.time() + WAIT
        while time.time() < deadline and len(modes) < 3:
            for n in nodes:
                rc, out = healthcheck(n, services)
                m = re.search(r"Mode: (\w+)", out)
                if rc == 0 and m and m.group(1) in ("leader", "follower"):
                    modes[n.name] = m.group(1)
            time.sleep(0.5)
        assert sorted(modes.values()) == ["follower", "follower", "leader"], modes
        # A write through one server is read through another.
        a = f"127.0.0.1:{ports['zoo1'][2]}"
        c = f"127.0.0.1:{ports['zoo3'][2]}"
        run = lambda *args: subprocess.run([binary, "cli", *args], capture_output=True, text=True, timeout=60)  # noqa: E731
        p = run("-server", a, "create", "/deploy", "compose")
        assert p.returncode == 0, p.stderr
        p = run("-server", c, "sync", "/deploy")
        p = run("-server", c, "get", "/deploy")
        # zkCli's one-shot output: the connection lines, then the data.
        assert p.stdout.strip().splitlines()[-1] == "compose", (p.stdout, p.stderr)
        # The ports the compose file publishes answer: metrics and AdminServer.
        import urllib.request
        for n in nodes:
            body = urllib.request.urlopen(f"http://127.0.0.1:{n.metrics}/metrics", timeout=10).read().decode()
            assert "znode_count" in body, body[:200]
            ruok = urllib.request.urlopen(f"http://127.0.0.1:{n.admin}/commands/ruok", timeout=10).read()
            assert json.loads(ruok)["error"] is None, ruok
            assert four(ports[n.name][2], "ruok") == "imok"
    finally:
        for n in nodes:
            n.stop()
    for n in nodes:
        assert n.proc.returncode == 0, f"{n.name} exited {n.proc.returncode} on SIGTERM"


def systemd_unit(binary, work):
    unit = open(os.path.join(DEPLOY, "rookeeper.service")).read()
    keys = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            keys.setdefault(k.strip(), v.strip())
    exec_start = shlex.split(keys["ExecStart"])
    assert exec_start[0] == "/usr/local/bin/rookeeper", exec_start
    assert exec_start[1:3] == ["server", "start-foreground"], exec_start
    conf_path = exec_start[3]
    root = os.path.join(work, "systemd")
    os.makedirs(root)
    port = free_port()
    cfg = os.path.join(root, "zoo.cfg")
    with open(cfg, "w") as f:
        f.write(f"tickTime=2000\ndataDir={root}/data\nclientPort={port}\n"
                "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n")
    moved = unit.replace("/usr/local/bin/rookeeper", binary).replace(conf_path, cfg)
    unit_file = os.path.join(root, "rookeeper.service")
    with open(unit_file, "w") as f:
        f.write(moved)
    if shutil.which("systemd-analyze"):
        p = subprocess.run(["systemd-analyze", "verify", unit_file], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
    else:
        print("note: systemd-analyze not installed; the unit's syntax is not verified")
    args = [binary] + exec_start[1:3] + [cfg]
    env = dict(os.environ)
    for e in re.findall(r"^Environment=(\S+)$", unit, flags=re.M):
        k, v = e.split("=", 1)
        env[k] = os.path.join(root, "log") if v.startswith("/var/log") else v
    with open(os.path.join(root, "out.log"), "w") as log:
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_serving(port, WAIT, proc)
            p = subprocess.run([binary, "server", "status", cfg], capture_output=True, text=True, timeout=30)
            assert p.returncode == 0 and "Mode: standalone" in p.stdout, p.stdout + p.stderr
            sig = getattr(signal, keys.get("KillSignal", "SIGTERM"))
            proc.send_signal(sig)
            proc.wait(timeout=int(keys.get("TimeoutStopSec", "90")))
            assert proc.returncode == 0, f"exit {proc.returncode} on {sig.name}"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def main():
    binary = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="rk-deploy-")
    try:
        check("compose ensemble from the image's entrypoint and CMD; healthcheck; write and read across servers",
              lambda: compose_ensemble(binary, work))
        check("systemd unit verifies; its ExecStart serves, status says standalone, KillSignal stops it",
              lambda: systemd_unit(binary, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"deploy: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
