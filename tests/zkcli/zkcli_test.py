"""Drives Apache's zkCli.sh against a rookeeper server on a free loopback
port: the seed documents' session (ls, create, get, get -w with a set from a
second client printing the WATCHER event, set, stat, delete, deleteall).
Every wait is bounded; the server is always stopped."""

import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time

ZKCLI = os.environ.get("ZKCLI", "/usr/share/zookeeper/bin/zkCli.sh")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from loopback import free_port, wait_port  # noqa: E402

WAIT = 30.0


class Cli:
    """An interactive zkCli.sh whose output lines are collected by a thread."""

    def __init__(self, server):
        self.p = subprocess.Popen(
            [ZKCLI, "-server", server],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))

    def send(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()

    def expect(self, pattern, timeout=WAIT):
        rx = re.compile(pattern)
        for line in self.seen:
            if rx.search(line):
                self.seen.remove(line)
                return line
        end = time.time() + timeout
        while time.time() < end:
            try:
                line = self.lines.get(timeout=max(0.05, end - time.time()))
            except queue.Empty:
                break
            if rx.search(line):
                return line
            self.seen.append(line)
        raise AssertionError(f"zkCli output never matched {pattern!r}; saw:\n" + "\n".join(self.seen[-40:]))

    def close(self):
        try:
            self.send("quit")
            self.p.wait(timeout=15)
        except Exception:
            self.p.kill()


def one_shot(server, *args):
    out = subprocess.run([ZKCLI, "-server", server, *args], capture_output=True, text=True, timeout=60)
    return out.stdout + out.stderr


def main():
    binary = sys.argv[1]
    port = free_port()
    work = tempfile.mkdtemp(prefix="rk-zkcli-")
    cfg = os.path.join(work, "zoo.cfg")
    with open(cfg, "w") as f:
        f.write(f"tickTime=2000\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\ndataDir={work}/data\n")
    log = open(os.path.join(work, "server.log"), "w")
    server = subprocess.Popen([binary, "server", cfg], stdout=log, stderr=subprocess.STDOUT)
    passed = failed = 0
    try:
        wait_port(port, WAIT, server)
        addr = f"127.0.0.1:{port}"
        a = Cli(addr)
        a.expect(r"WatchedEvent state:SyncConnected type:None path:null")
        steps = [
            ("ls /", r"^\[zookeeper\]$"),
            ("create /zk myData", r"Created /zk"),
            ("get /zk", r"^myData$"),
        ]
        for cmd, pat in steps:
            a.send(cmd)
            a.expect(pat)
            passed += 1
        a.send("get -w /zk")
        a.expect(r"^myData$")
        # A second client changes the node: the first prints the event.
        out = one_shot(addr, "set", "/zk", "zsl")
        assert "Exception" not in out, out
        a.expect(r"^WATCHER::$")
        a.expect(r"WatchedEvent state:SyncConnected type:NodeDataChanged path:/zk")
        passed += 1
        more = [
            ("get /zk", r"^zsl$"),
            ("set /zk zsl2", None),
            ("stat /zk", r"^dataVersion = 2$"),
            ("create /zk/child c", r"Created /zk/child"),
            ("delete /zk", r"Node not empty: /zk"),
            ("deleteall /zk", None),
            ("ls /", r"^\[zookeeper\]$"),
            ("create /gone x", r"Created /gone"),
            ("delete /gone", None),
            ("stat /gone", r"Node does not exist: /gone"),
        ]
        for cmd, pat in more:
            a.send(cmd)
            if pat:
                a.expect(pat)
            passed += 1
        a.close()
    except AssertionError as e:
        failed += 1
        print(f"FAILED: {e}", file=sys.stderr)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    if failed:
        print(open(os.path.join(work, "server.log")).read()[-4000:], file=sys.stderr)
    print(f"zkcli: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
