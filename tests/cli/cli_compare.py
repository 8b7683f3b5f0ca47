"""`rookeeper cli` against Apache's zkCli.sh: one scripted session that
uses every zkCli 3.8 command, run three ways,

  reference: Apache's zkCli.sh against Apache ZooKeeper 3.8,
  ours:      rookeeper cli against rookeeper,
  mixed:     rookeeper cli against Apache ZooKeeper 3.8,

must give the same stdout, stderr and exit code once times, zxids, session
ids and ports are normalised. Watch events print asynchronously in zkCli,
so they are compared as a sorted list apart from the other lines. Then a
few one-shot commands (`cli -server S cmd args`) are compared the same way.

  python3 tests/cli/cli_compare.py path/to/rookeeper

Every wait is bounded; both servers are always stopped."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from loopback import free_port, wait_serving  # noqa: E402

ZKCLI = os.environ.get("ZKCLI", "/usr/share/zookeeper/bin/zkCli.sh")
J = "/usr/share/java"
APACHE_CP = ":".join(
    f"{J}/{j}.jar"
    for j in ["zookeeper", "netty-codec", "netty-resolver", "servlet-api", "slf4j-log4j12", "log4j-1.2"]
)
WAIT = 60
PROPS = ["zookeeper.extendedTypesEnabled=true"]

# zkCli prints an event when its event thread gets to it, and reads the
# printwatches flag then: under load that thread lags the commands, so the
# script is fed in steps around `printwatches off` (`#await TEXT` holds
# the next lines until stdout shows TEXT; `#pause S` waits S seconds for an
# event that, printing being off, cannot be seen).
# Every command of zkCli 3.8, with its flags and its error paths. Nodes
# are created with data: zkCli sends null data for `create /x`, which the
# zookeeper-client crate cannot (it prints as "null" there, "" here).
SCRIPT = """
version
create /t top
create /t/a hello
create /t/a again
create -e /t/eph ephemeral
create -s /t/seq- s1
create -s /t/seq- s2
create -e -s /t/es- x
create -c /t/cont c
create -c -e /t/bad x
create -t 10000 /t/ttl t
create -t 10000 -e /t/x x
create -t abc /t/x x
create -t 0 /t/x x
create /t/acl data digest:user1:abc=:cdrwa,world:anyone:r
create /t/badacl data foo
create /t/perm data world:anyone:rz
create bad x
create /t/ x
create /t/nope/child x
create
get /t/a
get -s /t/a
get /nope
get /t/a watch
set /t/a changed
set -s /t/a v2
set -v 99 /t/a x
set -v 3 /t/a x
set /t/a
get -x /t/a
stat /t/a
stat /t/nope
stat -w /t/new
create /t/new n
stat /t/a watch
ls /t
ls -s /t
ls -w /t
create /t/b b
ls -R /t
ls /t watch
ls
ls /nope
getAcl /t/a
getAcl -s /t/acl
getAcl /t/perm
getAcl /nope
setAcl /t/perm world:anyone:cdrwa
setAcl -s /t/perm world:anyone:r
setAcl -v 99 /t/perm world:anyone:cdrwa
setAcl /nope world:anyone:r
setAcl -R /t/b world:anyone:cdrwa
getAllChildrenNumber /t
getAllChildrenNumber /nope
getEphemerals /t
getEphemerals /t/nope
sync /t
addauth digest user1:pass1
whoami
create /t/secret s auth::cdrwa
getAcl /t/secret
addWatch /t/b
set /t/b b2
create /t/b/c c
addWatch -m PERSISTENT /t/a
addWatch -m BOGUS /t/a
addWatch
get -w /t/b/c
removewatches /t/b/c
removewatches /t/zz
ls -w /t/b
removewatches /t/b -c
#await type:ChildWatchRemoved path:/t/b
printwatches
printwatches off
printwatches
set /t/a silent
#pause 2
printwatches on
setquota -n 5 /t
setquota -N 3 /t/a
listquota /t
setquota -b 100 /t
setquota -B 1000 /t
listquota /t
create /t/q1 1
listquota /t
setquota -n 2 /t
delquota -n /t
listquota /t
delquota /t
listquota /t
delquota /t
setquota /t
setquota -n 1 -b 2 /t
setquota -n 0 /t
setquota -b -1 /t
setquota -n x /t
setquota -n 1 /nope
setquota -n 1 /zookeeper/quota/x
delquota -n -b /t
config
config -s
config -c
reconfig -add server.5=localhost:1234:1235;1236
reconfig -members server.1=localhost:1234:1235;1236 -add server.2=localhost:1:2;3
reconfig
delete /t/a
delete /t
delete -v 99 /t/b
delete /nope
delete /t/q1 extra
deleteall /t/b
deleteall -b x /t
deleteall -b 2 /t
ls /t
rmr /t
redo 3
redo 999
history
foo
close
ls /
connect {server}
ls /
quit
"""

ONE_SHOT = [
    ["create", "/oneshot", "x"],
    ["get", "/oneshot"],
    ["get", "/nope"],
    ["stat", "/oneshot"],
    ["ls", "/oneshot"],
    ["bogus"],
    ["delete", "/oneshot"],
]


class Server:
    def __init__(self, kind, binary, work):
        self.kind, self.binary = kind, binary
        self.work = os.path.join(work, kind)
        os.makedirs(self.work)
        self.port = free_port()
        self.proc = None
        self.log_path = os.path.join(self.work, "server.log")

    def start(self):
        cfg = os.path.join(self.work, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write(
                f"tickTime=2000\ndataDir={self.work}/data\nclientPort={self.port}\n"
                "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n"
            )
        self.log = open(self.log_path, "w")
        if self.kind.startswith("apache"):
            cmd = ["java", "-cp", APACHE_CP, *[f"-D{p}" for p in PROPS],
                   "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg]
        else:
            cmd = [self.binary, "server", *[f"-D{p}" for p in PROPS], cfg]
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

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"


def run(client, binary, server, args=None, script=None):
    if client == "zkcli":
        cmd = [ZKCLI, "-server", server.addr]
    else:
        cmd = [binary, "cli", "-server", server.addr]
    env = dict(os.environ, TZ="UTC", HOME=tempfile.gettempdir())
    if not script:
        p = subprocess.run(cmd + (args or []), input="", capture_output=True, text=True,
                           timeout=WAIT * 3, env=env)
        return p.stdout, p.stderr, p.returncode
    return run_in_steps(cmd, env, script.replace("{server}", server.addr))


def run_in_steps(cmd, env, script):
    """Feeds the script's lines, holding them at its #await / #pause steps."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    out, err = [], []
    seen = threading.Condition()

    def pump(stream, into):
        for line in stream:
            with seen:
                into.append(line)
                seen.notify_all()

    readers = [threading.Thread(target=pump, args=(s, b), daemon=True)
               for s, b in ((p.stdout, out), (p.stderr, err))]
    for t in readers:
        t.start()
    try:
        for line in script.splitlines():
            if line.startswith("#await "):
                text = line[len("#await "):]
                with seen:
                    # On timeout go on: the comparison then shows what is missing.
                    seen.wait_for(lambda: any(text in o for o in out), timeout=WAIT)
            elif line.startswith("#pause "):
                time.sleep(float(line.split()[1]))
            else:
                p.stdin.write(line + "\n")
                p.stdin.flush()
        p.stdin.close()
        p.wait(timeout=WAIT * 3)
    except (BrokenPipeError, subprocess.TimeoutExpired):
        p.kill()
        p.wait()
    for t in readers:
        t.join(timeout=WAIT)
    return "".join(out), "".join(err), p.returncode


NOISE = re.compile(r"^(SLF4J:|log4j:)")


def normalise(text, server):
    text = text.replace(server.addr, "HOST:PORT")
    text = re.sub(r"^(cZxid|mZxid|pZxid) = 0x[0-9a-f]+$", r"\1 = 0xZXID", text, flags=re.M)
    text = re.sub(r"^(ctime|mtime) = .*$", r"\1 = TIME", text, flags=re.M)
    text = re.sub(r"^ephemeralOwner = 0x[0-9a-f]*[1-9a-f][0-9a-f]*$", "ephemeralOwner = 0xSESSION", text, flags=re.M)
    text = re.sub(r"^ZooKeeper CLI version: .*$", "ZooKeeper CLI version: VERSION", text, flags=re.M)
    text = re.sub(r"'digest,'user1:[^\n]*", "'digest,'user1:HASH", text)
    return text


def sort_unordered(lines):
    """Apache keeps a connection's auth ids and a session's ephemerals in
    hash sets, so whoami and getEphemerals list them in no set order."""
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("[/") and line.endswith("]"):
            line = "[" + ", ".join(sorted(line[1:-1].split(", "))) + "]"
        out.append(line)
        if line == "Auth scheme: User":
            j = i + 1
            while j < len(lines) and re.match(r"^\w+: ", lines[j]) and not lines[j].startswith("Output"):
                j += 1
            out.extend(sorted(lines[i + 1:j]))
            i = j
            continue
        i += 1
    return out


def split_events(stdout):
    """Watch events (and their WATCHER:: markers) apart from the rest; blank
    lines are dropped, since zkCli's events interleave with output."""
    events, rest = [], []
    for line in stdout.splitlines():
        if line.startswith("WatchedEvent "):
            events.append(line)
        elif line == "WATCHER::" or line.strip() == "":
            continue
        else:
            rest.append(line)
    return sorted(events), rest


def result(client, binary, server, **kw):
    out, err, rc = run(client, binary, server, **kw)
    out, err = normalise(out, server), normalise(err, server)
    events, lines = split_events(out)
    err_lines = [line for line in err.splitlines() if not NOISE.match(line) and line.strip()]
    return {"events": events, "stdout": sort_unordered(lines), "stderr": err_lines, "rc": rc}


def diff(name, want, got):
    problems = []
    for key in ("stdout", "stderr", "events"):
        if want[key] != got[key]:
            import difflib
            d = "\n".join(difflib.unified_diff(want[key], got[key], "zkCli.sh", name, lineterm="", n=1))
            problems.append(f"{name}: {key} differs:\n{d}")
    if want["rc"] != got["rc"]:
        problems.append(f"{name}: exit code {got['rc']}, zkCli.sh gave {want['rc']}")
    return problems


def main():
    binary = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="rk-cli-compare-")
    apache = Server("apache", binary, work)
    # The mixed run gets a fresh Apache server, so both sessions start
    # from the same tree.
    apache2 = Server("apache2", binary, work)
    ours = Server("rookeeper", binary, work)
    passed = failed = 0
    try:
        apache.start()
        apache2.start()
        ours.start()
        checks = []
        ref = result("zkcli", binary, apache, script=SCRIPT)
        checks.append(("session: rookeeper cli vs rookeeper", ref, result("rk", binary, ours, script=SCRIPT)))
        checks.append(("session: rookeeper cli vs Apache", ref, result("rk", binary, apache2, script=SCRIPT)))
        # Sanity: the reference itself saw the commands work.
        assert any(line.startswith("Output quota for /t") for line in ref["stdout"]), ref
        for args in ONE_SHOT:
            want = result("zkcli", binary, apache, args=args)
            got_ours = result("rk", binary, ours, args=args)
            got_apache = result("rk", binary, apache2, args=args)
            checks.append((f"one-shot {' '.join(args)} vs rookeeper", want, got_ours))
            checks.append((f"one-shot {' '.join(args)} vs Apache", want, got_apache))
        for name, want, got in checks:
            problems = diff(name, want, got)
            if problems:
                failed += 1
                for p in problems:
                    print(f"FAILED {p}\n", file=sys.stderr)
            else:
                passed += 1
                print(f"ok: {name}")
    except (AssertionError, subprocess.TimeoutExpired, OSError) as e:
        failed += 1
        print(f"FAILED: {e!r}", file=sys.stderr)
    finally:
        for s in (apache, apache2, ours):
            s.stop()
    if failed:
        for s in (apache, apache2, ours):
            try:
                print(f"--- {s.kind} log tail\n" + open(s.log_path).read()[-3000:], file=sys.stderr)
            except OSError:
                pass
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"cli compare: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
