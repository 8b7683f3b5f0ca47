"""`rookeeper cli` as a person uses it, driven through a pseudo-terminal
against a rookeeper server: the zkCli prompt, Tab completion of commands
and of znode paths (listed from the server), history recalled with the Up
arrow and kept across sessions in the history file, a watch event printed
while the prompt waits, Ctrl-C dropping the line being typed and Ctrl-D
leaving (closing the session).

  python3 tests/cli/interactive_test.py path/to/rookeeper

Every wait is bounded; the server and the shells are always stopped."""

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from loopback import free_port, wait_serving  # noqa: E402

WAIT = 20.0
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")
UP = "\x1b[A"


class Term:
    """A `rookeeper cli` on a pseudo-terminal; `screen` is everything it
    printed so far, without terminal control sequences."""

    def __init__(self, binary, addr, env):
        self.master, slave = pty.openpty()
        self.p = subprocess.Popen(
            [binary, "cli", "-server", addr],
            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
            start_new_session=True,
        )
        os.close(slave)
        self.raw = b""
        self.mark = 0

    def _read(self, timeout):
        r, _, _ = select.select([self.master], [], [], timeout)
        if r:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return False
            self.raw += chunk
            return bool(chunk)
        return True

    @property
    def screen(self):
        return ANSI.sub("", self.raw.decode("utf-8", "replace"))

    def expect(self, pattern, timeout=WAIT):
        """Waits for `pattern` in what was printed since the last match."""
        rx = re.compile(pattern)
        end = time.time() + timeout
        while True:
            text = self.screen
            m = rx.search(text, self.mark)
            if m:
                self.mark = m.end()
                return m
            if time.time() > end:
                raise AssertionError(
                    f"never saw {pattern!r}; screen since last match:\n{text[self.mark:][-3000:]}"
                )
            if not self._read(0.1) and self.p.poll() is not None:
                raise AssertionError(f"cli exited ({self.p.returncode}) before {pattern!r}:\n{text[-3000:]}")

    def type(self, keys):
        os.write(self.master, keys.encode())
        time.sleep(0.15)

    def quiet(self, seconds=0.5):
        """Reads for a while; returns what was printed meanwhile."""
        start = len(self.screen)
        end = time.time() + seconds
        while time.time() < end:
            self._read(0.05)
        return self.screen[start:]

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(timeout=10)
        os.close(self.master)


def one_shot(binary, addr, *args):
    return subprocess.run([binary, "cli", "-server", addr, *args], capture_output=True,
                          text=True, timeout=60)


def main():
    binary = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="rk-cli-pty-")
    port = free_port()
    addr = f"127.0.0.1:{port}"
    cfg = os.path.join(work, "zoo.cfg")
    with open(cfg, "w") as f:
        f.write(f"tickTime=2000\nclientPort={port}\nclientPortAddress=127.0.0.1\ndataDir={work}/data\n"
                "admin.enableServer=false\n")
    log = open(os.path.join(work, "server.log"), "w")
    servers = [subprocess.Popen([binary, "server", cfg], stdout=log, stderr=subprocess.STDOUT)]
    hist = os.path.join(work, "history")
    env = dict(os.environ, TERM="xterm", ROOKEEPER_CLI_HISTORY=hist, TZ="UTC")
    passed = failed = 0
    terms = []

    def check(name, fn):
        nonlocal passed, failed
        try:
            fn()
            passed += 1
            print(f"ok: {name}")
        except AssertionError as e:
            failed += 1
            print(f"FAILED {name}: {e}", file=sys.stderr)
            raise

    try:
        wait_serving(port, WAIT, servers[0])
        for p in ["/pty-alpha", "/pty-beta", "/other"]:
            r = one_shot(binary, addr, "create", p, "v")
            assert r.returncode == 0, r
        t = Term(binary, addr, env)
        terms.append(t)

        def prompt():
            t.expect(r"Welcome to ZooKeeper!")
            t.expect(r"WatchedEvent state:SyncConnected type:None path:null")
            t.expect(re.escape(f"[zk: {addr}(CONNECTED) 0] "))

        def complete_command():
            # One candidate: completed in place.
            t.type("getAc")
            t.type("\t")
            t.expect(r"getAcl")
            # A path, listed from the server: /pty- is common to two nodes,
            # a second Tab lists both, more letters make it unique.
            t.type(" /pty-")
            t.type("\t")
            t.type("\t")
            t.expect(r"pty-alpha\s+pty-beta")
            t.type("a")
            t.type("\t")
            t.expect(r"getAcl /pty-alpha")
            t.type("\r")
            t.expect(r"'world,'anyone\n: cdrwa")
            t.expect(re.escape(f"[zk: {addr}(CONNECTED) 1] "))

        def complete_list():
            t.type("ge")
            t.type("\t")
            t.type("\t")
            start = t.mark
            t.expect(r"getEphemerals")
            listed = t.screen[start:t.mark]
            for c in ["getAcl", "getAllChildrenNumber", "getEphemerals"]:
                assert c in listed, listed
            t.type("\x15")  # Ctrl-U: drop the line
            t.quiet(0.3)

        def history_up():
            t.type(UP)
            t.expect(r"getAcl /pty-alpha")
            t.type("\r")
            t.expect(r"'world,'anyone\n: cdrwa")
            t.expect(re.escape(f"[zk: {addr}(CONNECTED) 2] "))

        def watch_event():
            t.type("get -w /pty-beta\r")
            t.expect(r"\nv\n")
            t.expect(re.escape(f"[zk: {addr}(CONNECTED) 3] "))
            r = one_shot(binary, addr, "set", "/pty-beta", "changed")
            assert r.returncode == 0, r
            t.expect(r"WATCHER::\n\nWatchedEvent state:SyncConnected type:NodeDataChanged path:/pty-beta")

        def ctrl_c():
            t.type("create /never x")
            t.type("\x03")
            t.type("ls /\r")
            t.expect(r"\[other, pty-alpha, pty-beta, zookeeper\]")
            assert "Created /never" not in t.screen
            r = one_shot(binary, addr, "stat", "/never")
            assert r.returncode == 1 and "Node does not exist: /never" in r.stderr, r

        def reconnect():
            # The server goes away and comes back on the same dataDir: the
            # shell shows both state changes and the session carries on.
            servers[-1].terminate()
            servers[-1].wait(timeout=WAIT)
            t.expect(r"WatchedEvent state:Disconnected type:None path:null")
            servers.append(subprocess.Popen([binary, "server", cfg], stdout=log, stderr=subprocess.STDOUT))
            wait_serving(port, WAIT, servers[-1])
            t.expect(r"WatchedEvent state:SyncConnected type:None path:null")
            t.type("ls /\r")
            t.expect(r"\[other, pty-alpha, pty-beta, zookeeper\]")

        def ctrl_d():
            t.type("create -e /pty-eph x\r")
            t.expect(r"Created /pty-eph")
            t.type("\x04")
            t.expect(r"WatchedEvent state:Closed type:None path:null")
            t.p.wait(timeout=WAIT)
            assert t.p.returncode == 0, t.p.returncode
            # The session is closed, not left to expire: its ephemeral is gone.
            r = one_shot(binary, addr, "stat", "/pty-eph")
            assert r.returncode == 1, r

        def history_kept():
            with open(hist) as f:
                saved = f.read()
            assert "getAcl /pty-alpha" in saved and "get -w /pty-beta" in saved, saved
            assert "create /never" not in saved, saved
            t2 = Term(binary, addr, env)
            terms.append(t2)
            t2.expect(re.escape(f"[zk: {addr}(CONNECTED) 0] "))
            t2.type(UP)
            t2.expect(r"create -e /pty-eph x")
            t2.type("\x15")
            t2.type("history\r")
            t2.expect(r"0 - history")
            t2.type("quit\r")
            t2.p.wait(timeout=WAIT)

        check("prompt and connection event", prompt)
        check("tab completion of commands and znode paths", complete_command)
        check("tab lists candidates", complete_list)
        check("history: Up recalls the last command", history_up)
        check("watch event printed at the prompt", watch_event)
        check("Ctrl-C drops the line", ctrl_c)
        check("connection loss and reconnection shown", reconnect)
        check("Ctrl-D leaves and closes the session", ctrl_d)
        check("history file kept across sessions", history_kept)
    except AssertionError as e:
        if not failed:
            failed += 1
            print(f"FAILED: {e}", file=sys.stderr)
    finally:
        for t in terms:
            t.close()
        for server in servers:
            if server.poll() is None:
                server.terminate()
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.kill()
        log.close()
    if failed:
        print(open(os.path.join(work, "server.log")).read()[-3000:], file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"cli interactive: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
