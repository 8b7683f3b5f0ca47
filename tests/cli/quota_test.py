"""Quota enforcement on rookeeper, through `rookeeper cli`: with
`enforceQuota=true` in zoo.cfg a hard count or byte limit refuses create and
setData with QuotaExceeded (zkCli's "Quota has exceeded : /path", as Apache
ZooKeeper 3.8 with -Dzookeeper.enforceQuota=true says it); a soft limit lets
the write through and the server logs a warning; the stats survive a
restart; without enforcement a hard limit refuses nothing (and is logged).

  python3 tests/cli/quota_test.py path/to/rookeeper

Every wait is bounded; the servers are always stopped."""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from loopback import free_port, wait_serving  # noqa: E402

J = "/usr/share/java"
APACHE_CP = ":".join(
    f"{J}/{j}.jar"
    for j in ["zookeeper", "netty-codec", "netty-resolver", "servlet-api", "slf4j-log4j12", "log4j-1.2"]
)
WAIT = 60


class Server:
    def __init__(self, name, binary, work, enforce, apache=False):
        self.name, self.binary, self.enforce, self.apache = name, binary, enforce, apache
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.port = free_port()
        self.proc = None
        self.log_path = os.path.join(self.dir, "server.log")

    def start(self):
        cfg = os.path.join(self.dir, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write(
                f"tickTime=2000\ndataDir={self.dir}/data\nclientPort={self.port}\n"
                "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
            )
            if self.enforce and not self.apache:
                f.write("enforceQuota=true\n")
        self.log = open(self.log_path, "a")
        if self.apache:
            props = ["-Dzookeeper.enforceQuota=true"] if self.enforce else []
            cmd = ["java", "-cp", APACHE_CP, *props, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg]
        else:
            cmd = [self.binary, "server", cfg]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        wait_serving(self.port, WAIT, self.proc)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        if getattr(self, "log", None):
            self.log.close()

    def cli(self, *args):
        p = subprocess.run([self.binary, "cli", "-server", f"127.0.0.1:{self.port}", *args],
                           capture_output=True, text=True, timeout=WAIT)
        return p.returncode, p.stdout, p.stderr

    def ok(self, *args):
        rc, out, err = self.cli(*args)
        assert rc == 0, f"{self.name}: {' '.join(args)} failed ({rc}): {err}"
        return out

    def refused(self, path, *args):
        rc, out, err = self.cli(*args)
        assert rc == 1 and f"Quota has exceeded : {path}" in err, \
            f"{self.name}: {' '.join(args)} was not refused: rc={rc} {err!r}"

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()


def hard_limits(s):
    s.ok("create", "/hard", "x")
    s.ok("setquota", "-N", "3", "/hard")
    s.ok("create", "/hard/1", "a")
    s.ok("create", "/hard/2", "b")
    # /hard, /hard/1, /hard/2: a fourth node would pass the hard limit of 3.
    s.refused("/hard/3", "create", "/hard/3", "c")
    s.refused("/hard/2/x", "create", "/hard/2/x", "c")
    assert "Output stat for /hard count=3,bytes=3" in s.ok("listquota", "/hard")
    # Bytes: setData and create, counted as the difference they make.
    s.ok("create", "/bytes", "12345")
    s.ok("setquota", "-B", "10", "/bytes")
    s.ok("set", "/bytes", "1234567890")
    s.refused("/bytes", "set", "/bytes", "12345678901")
    s.refused("/bytes/c", "create", "/bytes/c", "1")
    s.ok("create", "/bytes/empty", "")
    assert "Output stat for /bytes count=2,bytes=10" in s.ok("listquota", "/bytes")
    # Deleting frees room.
    s.ok("delete", "/hard/2")
    s.ok("create", "/hard/3", "c")


def main():
    binary = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="rk-cli-quota-")
    enforced = Server("enforced", binary, work, enforce=True)
    relaxed = Server("relaxed", binary, work, enforce=False)
    apache = Server("apache", binary, work, enforce=True, apache=True)
    servers = [enforced, relaxed, apache]
    passed = failed = 0

    def check(name, fn):
        nonlocal passed, failed
        try:
            fn()
            passed += 1
            print(f"ok: {name}")
        except AssertionError as e:
            failed += 1
            print(f"FAILED {name}: {e}", file=sys.stderr)

    try:
        for s in servers:
            s.start()
        check("hard limits refuse create and setData (rookeeper, enforceQuota=true)", lambda: hard_limits(enforced))
        check("the same on Apache ZooKeeper 3.8 (-Dzookeeper.enforceQuota=true)", lambda: hard_limits(apache))

        def soft():
            s = enforced
            s.ok("create", "/soft", "x")
            s.ok("setquota", "-n", "2", "/soft")
            s.ok("create", "/soft/1", "a")
            s.ok("create", "/soft/2", "b")
            assert "Output stat for /soft count=3,bytes=3" in s.ok("listquota", "/soft")
            log = s.log_text()
            assert "Quota exceeded: /soft [current count=3, softCountLimit=2]" in log, log[-2000:]
        check("soft limits allow the write and log a warning", soft)

        def not_enforced():
            s = relaxed
            s.ok("create", "/hard", "x")
            s.ok("setquota", "-N", "1", "/hard")
            s.ok("create", "/hard/1", "a")
            s.ok("create", "/hard/2", "b")
            assert "Output stat for /hard count=3,bytes=3" in s.ok("listquota", "/hard")
            log = s.log_text()
            assert "Quota exceeded: /hard [current count=2, hardCountLimit=1]" in log, log[-2000:]
        check("without enforceQuota a hard limit refuses nothing (a warning is logged)", not_enforced)

        def restart():
            s = enforced
            s.stop()
            s.start()
            assert "Output stat for /hard count=3,bytes=3" in s.ok("listquota", "/hard")
            s.refused("/hard/4", "create", "/hard/4", "d")
            s.ok("delquota", "/hard")
            s.ok("create", "/hard/4", "d")
            rc, _, err = s.cli("listquota", "/hard")
            assert "quota for /hard does not exist." in err, err
        check("stats survive a restart; delquota lifts the limit", restart)
    except (AssertionError, subprocess.TimeoutExpired, OSError) as e:
        failed += 1
        print(f"FAILED: {e!r}", file=sys.stderr)
    finally:
        for s in servers:
            s.stop()
    if failed:
        for s in servers:
            try:
                print(f"--- {s.name} log tail\n{s.log_text()[-3000:]}", file=sys.stderr)
            except OSError:
                pass
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"cli quota: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
