"""The same dataDir served by Apache ZooKeeper 3.8 (Debian's package) and by
rookeeper, in both directions.

  1. Apache builds a dataDir through a client: every node kind, ACLs,
     sessions that still hold ephemerals, more than snapCount txns (so both
     snapshots and logs exist). Apache is stopped with the sessions open.
  2. rookeeper starts on that dataDir: every node, its data, ACL and Stat
     must equal what Apache served. rookeeper writes more and stops.
  3. Apache starts on it again: everything, old and new, is there.
  4. The same the other way round, from an empty dataDir built by rookeeper.

Usage: storage_interop.py PATH/TO/rookeeper   (run with the kazoo venv's
python: kazoo is the client). Every wait is bounded; servers are always
stopped.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

from kazoo.client import KazooClient
from kazoo.protocol.serialization import Create, long_struct
from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl, make_acl


class CreateContainer(Create):
    """kazoo 2.11 has no container API: opcode 19 with CreateRequest."""

    type = 19


class CreateTTL(Create):
    """opcode 21: CreateRequest followed by the ttl (a long)."""

    type = 21

    def __new__(cls, path, data, acl, flags, ttl):
        self = super().__new__(cls, path, data, acl, flags)
        self.ttl = ttl
        return self

    def serialize(self):
        return super().serialize() + long_struct.pack(self.ttl)


def raw_create(zk, request):
    result = zk.handler.async_result()
    zk._call(request, result)
    return result.get(timeout=WAIT)

J = "/usr/share/java"
APACHE_CP = ":".join(
    f"{J}/{j}.jar"
    for j in ["zookeeper", "netty-codec", "netty-resolver", "servlet-api", "slf4j-log4j12", "log4j-1.2"]
)
SNAP_COUNT = 40
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from loopback import free_port, wait_serving  # noqa: E402

WAIT = 30.0


class Server:
    def __init__(self, kind, work, port, binary):
        self.kind, self.work, self.port, self.binary = kind, work, port, binary
        self.proc = None

    def start(self):
        cfg = os.path.join(self.work, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write(
                f"tickTime=2000\ndataDir={self.work}/data\nclientPort={self.port}\n"
                f"clientPortAddress=127.0.0.1\nsnapCount={SNAP_COUNT}\n"
                "maxSessionTimeout=600000\nadmin.enableServer=false\n"
                "4lw.commands.whitelist=*\n"
            )
        props = ["-Dzookeeper.extendedTypesEnabled=true"]
        log = open(os.path.join(self.work, f"{self.kind}.log"), "a")
        if self.kind == "apache":
            # log4j 1.2 says nothing without a configuration; its log is
            # what a failure report needs.
            l4j = os.path.join(self.work, "log4j.properties")
            with open(l4j, "w") as f:
                f.write(
                    "log4j.rootLogger=INFO, CONSOLE\n"
                    "log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender\n"
                    "log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout\n"
                    "log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} %-5p [%t] %c{1} - %m%n\n"
                )
            props.append(f"-Dlog4j.configuration=file:{l4j}")
            cmd = ["java", "-cp", APACHE_CP, *props, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg]
        else:
            cmd = [self.binary, "server", *props, cfg]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        wait_serving(self.port, WAIT, self.proc)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def client(port, timeout=60.0, auth=None):
    c = KazooClient(hosts=f"127.0.0.1:{port}", timeout=timeout, auth_data=auth or [])
    c.start(timeout=WAIT)
    return c


def dump(zk, path="/", out=None):
    """Every node: (data, acl, stat) keyed by path, /zookeeper/config aside."""
    out = {} if out is None else out
    data, stat = zk.get(path)
    acl, _ = zk.get_acls(path)
    out[path] = (data, sorted((a.perms, a.id.scheme, a.id.id) for a in acl), tuple(stat))
    for child in sorted(zk.get_children(path)):
        p = (path.rstrip("/") + "/" + child)
        if p == "/zookeeper/config":
            continue
        dump(zk, p, out)
    return out


def build(zk, eph_clients, tag):
    """Writes more than snapCount txns of every kind under /<tag>."""
    root = f"/{tag}"
    zk.create(root, b"root-" + tag.encode())
    zk.create(f"{root}/empty", b"")
    zk.create(f"{root}/null", None)
    zk.create(f"{root}/seq-", b"s", sequence=True)
    zk.create(f"{root}/seq-", b"s", sequence=True)
    raw_create(zk, CreateContainer(f"{root}/container", b"c", OPEN_ACL_UNSAFE, 4))
    zk.create(f"{root}/container/child", b"x")
    raw_create(zk, CreateTTL(f"{root}/ttl", b"t", OPEN_ACL_UNSAFE, 5, 3_600_000))
    zk.create(f"{root}/acl-digest", b"d", acl=[make_digest_acl("user", "pw", all=True)])
    zk.create(f"{root}/acl-ip", b"i", acl=[make_acl("ip", "127.0.0.1", read=True, write=True, create=True, delete=True, admin=True)])
    for i in range(SNAP_COUNT * 3):
        zk.create(f"{root}/n{i:04d}", str(i).encode())
        zk.set(f"{root}/n{i:04d}", b"v2-" + str(i).encode())
        if i % 7 == 0:
            zk.delete(f"{root}/n{i:04d}")
    for j, e in enumerate(eph_clients):
        e.create(f"{root}/eph{j}", b"e", ephemeral=True)
        e.create(f"{root}/ephseq-", b"e", ephemeral=True, sequence=True)
    tx = zk.transaction()
    tx.create(f"{root}/multi-a", b"a")
    tx.create(f"{root}/multi-b", b"b")
    tx.commit()
    zk.set_acls(f"{root}/empty", [make_acl("world", "anyone", all=True)])


def compare(before, after, what):
    missing = [p for p in before if p not in after]
    extra = [p for p in after if p not in before]
    diff = [p for p in before if p in after and before[p] != after[p]]
    if missing or extra or diff:
        lines = [f"{what}: {len(missing)} missing, {len(extra)} extra, {len(diff)} different"]
        for p in (missing + extra)[:10]:
            lines.append(f"  {p}")
        for p in diff[:10]:
            lines.append(f"  {p}: {before[p]} != {after[p]}")
        raise AssertionError("\n".join(lines))


def log_tails(work, lines=40):
    """The end of each server's log, for the failure report."""
    out = []
    for kind in ("apache", "rookeeper"):
        path = os.path.join(work, f"{kind}.log")
        if os.path.exists(path):
            with open(path, errors="replace") as f:
                tail = f.readlines()[-lines:]
            out.append(f"--- last {len(tail)} lines of {kind}.log\n" + "".join(tail))
    return "\n".join(out)


def scenario(first, second, binary):
    """first builds, second reads and writes, first reads again."""
    work = tempfile.mkdtemp(prefix=f"rk-interop-{first}-")
    port = free_port()
    servers = {k: Server(k, work, port, binary) for k in ("apache", "rookeeper")}
    auth = [("digest", "user:pw")]
    step = "start"
    try:
        step = f"1: {first} builds"
        a = servers[first]
        a.start()
        zk = client(port, auth=auth)
        ephs = [client(port) for _ in range(2)]
        build(zk, ephs, f"step1-{first}")
        want = dump(zk)
        # Stop the server with the ephemeral sessions still open: they and
        # their nodes must come back from the dataDir.
        a.stop()
        for c in [zk, *ephs]:
            c.stop()
            c.close()

        step = f"2: {second} reads and writes"
        b = servers[second]
        b.start()
        zk = client(port, auth=auth)
        got = dump(zk)
        compare(want, got, f"{second} reading {first}'s dataDir")
        build(zk, [], f"step2-{second}")
        want2 = dump(zk)
        zk.stop()
        zk.close()
        b.stop()

        step = f"3: {first} reads back"
        a.start()
        zk = client(port, auth=auth)
        got2 = dump(zk)
        # The ephemeral sessions were not renewed by a client since step 1,
        # but their timeout (60 s) has not run out; both servers restore them.
        compare(want2, got2, f"{first} reading back after {second} wrote")
        zk.stop()
        zk.close()
        a.stop()
        return len(got2)
    except Exception as e:
        raise AssertionError(f"step {step}: {e!r}\n{log_tails(work)}") from e
    finally:
        for s in servers.values():
            s.stop()
        if os.environ.get("KEEP_INTEROP_DIRS") != "1":
            shutil.rmtree(work, ignore_errors=True)


def main():
    binary = sys.argv[1]
    passed = failed = 0
    for first, second in [("apache", "rookeeper"), ("rookeeper", "apache")]:
        name = f"{first} -> {second} -> {first}"
        try:
            n = scenario(first, second, binary)
            print(f"ok: {name} ({n} znodes compared)")
            passed += 1
        except Exception as e:  # report and go on to the other direction
            print(f"FAILED: {name}: {e}", file=sys.stderr)
            failed += 1
    print(f"storage interop: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
