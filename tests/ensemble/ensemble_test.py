"""Ensembles of real processes on loopback: rookeeper alone, and mixed with
Apache ZooKeeper 3.8 (Debian's package), through kazoo.

  ensemble_test.py PATH/TO/rookeeper [scenario ...]

Scenarios: three (failover and catch-up), diff-sync (DIFF from the
leader's txn log, or SNAP when that is cheaper), five (sequential start elects
server 3), observer, observer-master (and its two mixed variants), hierarchical (and
hierarchical-mixed), ssl-quorum (and two mixed variants), ssl-quorum-rolling, sasl-quorum (and two mixed variants), sasl-quorum-rolling, expiry, read-only, kill-under-load (and its two mixed
variants), trunc (and
trunc-apache-leader, trunc-rk-leader), stop-leader (SIGSTOP/SIGCONT of
the leader; and two mixed variants), reconfig (and reconfig-apache, the same
checks on Apache's servers), mixed-rk-leader, mixed-apache-leader, rolling (Apache ensemble
replaced by rookeeper one server at a time, clients connected, no write
lost). Each failure prints the servers' logs; every wait is bounded and
every process is stopped.
"""

import os
import random
from collections import namedtuple
import shutil
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from certs import make_quorum_certs, quorum_tls_cfg  # noqa: E402
from cluster import Cluster, four  # noqa: E402
from loopback import free_port, wait_serving  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import KazooException, ThrottledOpError  # noqa: E402
from kazoo.protocol import serialization as kser  # noqa: E402
from kazoo.retry import KazooRetry  # noqa: E402
from kazoo.security import OPEN_ACL_UNSAFE  # noqa: E402

BINARY = None
WAIT = 60


def client(hosts, timeout=10.0):
    c = KazooClient(
        hosts=hosts,
        timeout=timeout,
        connection_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=1),
        command_retry=KazooRetry(max_tries=20, delay=0.1, max_delay=1),
    )
    c.start(timeout=WAIT)
    return c


def assert_refused(hosts, wait):
    """A read-write client gets no session from `hosts` within `wait` s."""
    z = KazooClient(hosts=hosts, timeout=5)
    try:
        z.start(timeout=wait)
        raise AssertionError("a read-write client was served without a quorum")
    except Exception as e:  # kazoo's timeout
        assert "time" in repr(e).lower(), repr(e)
    finally:
        z.stop()
        z.close()


def dump(zk, path="/", out=None):
    out = {} if out is None else out
    data, stat = zk.get(path)
    out[path] = (data, stat.version, stat.czxid, stat.mzxid, stat.ephemeralOwner)
    for ch in sorted(zk.get_children(path)):
        p = path.rstrip("/") + "/" + ch
        if p.startswith("/zookeeper"):
            continue
        dump(zk, p, out)
    return out


def same_everywhere(c, ids=None):
    """Every server's tree (synced first) is the same."""
    ids = ids or [i for i, s in c.servers.items() if s.running()]
    dumps = {}
    for i in ids:
        z = client(c.hosts([i]))
        try:
            z.sync("/")
            dumps[i] = dump(z)
        finally:
            z.stop()
            z.close()
    first = dumps[ids[0]]
    for i in ids[1:]:
        if dumps[i] != first:
            missing = set(first) ^ set(dumps[i])
            diff = [p for p in first if p in dumps[i] and first[p] != dumps[i][p]]
            raise AssertionError(f"server {i} differs from {ids[0]}: {sorted(missing)[:5]} {diff[:5]}")
    return len(first)


def wait_for(pred, what, timeout=WAIT):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def three(work):
    c = Cluster(["rookeeper"] * 3, BINARY, work)
    try:
        c.start_all()
        c.wait_serving()
        zks = {i: client(c.hosts([i])) for i in c.servers}
        for i, z in zks.items():
            z.ensure_path("/t")
            for j in range(20):
                z.create(f"/t/s{i}-{j}", f"{i}-{j}".encode())
        eph = client(c.hosts())
        eph.create("/t/eph", b"e", ephemeral=True)
        # Everyone sees everyone's writes after sync.
        for z in zks.values():
            z.sync("/t")
            assert len(z.get_children("/t")) == 61
        leader = c.leader()
        c.servers[leader].kill()
        zks.pop(leader).stop()
        rest = [i for i in c.servers if i != leader]
        c.wait_serving(ids=rest)
        new_leader = c.leader()
        assert new_leader in rest, (leader, new_leader)
        # Writes go on through the survivors; the ephemeral's session moved.
        for i in rest:
            zks[i].create(f"/t/after-{i}", b"x")
        assert eph.exists("/t/eph") is not None
        eph.set("/t/eph", b"still mine")
        # The killed server comes back and catches up.
        c.servers[leader].start()
        c.wait_serving()
        n = same_everywhere(c)
        assert n >= 64, n
        # A follower restarted misses writes and catches up too.
        f = [i for i in c.servers if c.servers[i].mode() == "follower"][0]
        c.servers[f].kill()
        zks.pop(f, None)
        alive = [i for i in c.servers if i != f]
        z = client(c.hosts(alive))
        for j in range(30):
            z.create(f"/t/while-down-{j}", b"y")
        z.stop()
        c.servers[f].start()
        c.wait_serving()
        same_everywhere(c)
        for z in list(zks.values()) + [eph]:
            z.stop()
            z.close()
        # Alone, a server looks for a leader and turns clients away at once.
        s = c.servers[f]
        for i in c.servers:
            if i != f:
                c.servers[i].kill()
        wait_for(lambda: s.mode() is None, "the last server to stop serving")
        assert_refused(c.hosts([f]), 2)
        for i in c.servers:
            if i != f:
                c.servers[i].start()
        c.wait_serving()
        assert int(mntr(s)["zk_cnxn_closed_without_zk_server_running"]) >= 1, s.log_tail()
    finally:
        c.stop_all()


def observer(work):
    """Three participants and an observer: the observer serves reads, its
    writes go through the leader, it follows a new leader, and its vote
    never counts."""
    c = Cluster(["rookeeper"] * 4, BINARY, work, observers=(4,))
    try:
        c.start_all()
        m = c.wait_serving()
        assert m[4] == "observer", m
        assert c.leader() != 4
        zo = client(c.hosts([4]))
        zo.create("/obs", b"from-observer")
        zl = client(c.hosts([c.leader()]))
        zl.sync("/obs")
        assert zl.get("/obs")[0] == b"from-observer"
        zl.set("/obs", b"from-leader")
        zo.sync("/obs")
        assert zo.get("/obs")[0] == b"from-leader"
        zl.stop()
        leader = c.leader()
        c.servers[leader].kill()
        c.wait_serving(ids=[i for i in c.servers if i != leader])
        assert c.servers[4].mode() == "observer"
        zo.set("/obs", b"after failover")
        # With two participants down there is no quorum: the observer's
        # presence does not make one.
        other = [i for i in c.servers if i not in (leader, 4, c.leader())][0]
        c.servers[other].kill()
        wait_for(lambda: c.servers[4].mode() is None, "the observer to stop serving without a quorum")
        zo.stop()
        zo.close()
    finally:
        c.stop_all()


def close_clients(zs):
    for z in zs:
        z.stop()
        z.close()


def observer_master(work, kinds=("rookeeper",) * 4, tls=False):
    """observerMasterPort: the observer (server 4) syncs from a follower,
    not the leader; its writes, syncs and session pings go through that
    follower; when the follower dies it moves to the other one. `tls`: over
    quorum TLS (the observer master port too)."""
    extra = f"observerMasterPort={free_port()}\n"
    if tls:
        certs = make_quorum_certs(os.path.join(work, "certs"))
        extra += quorum_tls_cfg(certs["member"], certs["ca"])
    c = Cluster(list(kinds), BINARY, work, observers=(4,), own_hosts=True, extra=extra)
    zs = []
    try:
        c.start_all()
        c.wait_serving()
        leader = c.leader()
        followers = [i for i in (1, 2, 3) if i != leader]

        def master():
            if c.servers[4].mode() != "observer":
                return None
            m = int(mntr(c.servers[4]).get("zk_observer_master_id", "-1"))
            hosting = [i for i in followers if c.servers[i].running() and mntr(c.servers[i]).get("zk_synced_observers") == "1"]
            return m if hosting == [m] else None

        first = wait_for(master, "the observer to sync from a follower")
        assert first in followers, (first, leader)
        assert mntr(c.servers[leader]).get("zk_synced_observers") == "0", "the leader hosts the observer"
        zo = client(c.hosts([4]), timeout=2.0)
        zl = client(c.hosts([leader]))
        zs += [zo, zl]
        zo.create("/om", b"via-observer")
        zo.create("/om/eph", b"", ephemeral=True)
        zl.sync("/om")
        assert zl.get("/om")[0] == b"via-observer"
        zl.set("/om", b"via-leader")
        zo.sync("/om")
        assert zo.get("/om")[0] == b"via-leader"
        # The observer's session lives on its pings, relayed by the follower
        # to the leader: three session timeouts later the node is there.
        time.sleep(6)
        assert zl.exists("/om/eph") is not None, "the observer's session expired"
        # A session opened on the leader resumes on the observer: the
        # follower relays its REVALIDATE and passes the answer back.
        moved = client(c.hosts([leader]))
        zs.append(moved)
        sid = moved.client_id[0]
        moved.create("/om/moved", b"", ephemeral=True)
        back = KazooClient(hosts=c.hosts([4]), client_id=moved.client_id, timeout=10)
        zs.append(back)
        back.start(timeout=WAIT)
        assert back.client_id[0] == sid, (hex(back.client_id[0]), hex(sid))
        assert back.exists("/om/moved") is not None
        assert back.get("/om")[0] == b"via-leader"
        if c.servers[first].kind == "rookeeper":
            # The observer's writes went to the leader through its master,
            # which answers none of them itself.
            fm = mntr(c.servers[first])
            assert int(fm["zk_skip_learner_request_to_next_processor_count"]) >= 2, fm
            assert int(fm["zk_cnt_learner_request_processor_queue_size"]) >= 2, fm
        # A session that outlives the move: the observer is down while it
        # finds its next master, and a 2 s session (zo's) may expire before
        # its client is back, as with Apache's servers.
        zlong = client(c.hosts([4]), timeout=10.0)
        zs.append(zlong)
        zlong.create("/om/long", b"", ephemeral=True)
        c.servers[first].kill()
        other = [i for i in followers if i != first][0]
        second = wait_for(lambda: master() == other and other, "the observer to move to the other follower")
        assert second == other
        zlong.set("/om", b"after-move")
        zl.sync("/om")
        assert zl.get("/om")[0] == b"after-move"
        assert zl.exists("/om/long") is not None, "the observer's session did not survive the move"
        return same_everywhere(c)
    finally:
        close_clients(zs)
        c.stop_all()


def hierarchical(work, kinds=("rookeeper",) * 3):
    """Hierarchical quorums (group.1=1:2, group.2=3, weight.1=2): a quorum
    needs a weighted majority in both groups. Without server 2 the others
    serve (server 1 outweighs it); without server 1 servers 2 and 3 are a
    majority of servers but not a quorum, and stop serving."""
    c = Cluster(list(kinds), BINARY, work, extra="group.1=1:2\ngroup.2=3\nweight.1=2\n")
    zs = []
    try:
        c.start_all()
        c.wait_serving()
        z = client(c.hosts([3]))
        zs.append(z)
        z.create("/hq", b"1")
        c.servers[2].kill()
        c.wait_serving(ids=[1, 3])
        z.set("/hq", b"2")
        c.servers[2].start()
        c.wait_serving()
        c.servers[1].kill()
        wait_for(lambda: c.servers[2].mode() is None and c.servers[3].mode() is None,
                 "servers 2 and 3 to stop serving without group 1's majority")
        c.servers[1].start()
        c.wait_serving()
        z.sync("/hq")
        assert z.get("/hq")[0] == b"2"
        return same_everywhere(c)
    finally:
        close_clients(zs)
        c.stop_all()


def outsider_then_member(c, z, attempts):
    """Server 3 of a secured ensemble: restarted with each (props, zoo.cfg
    text) of `attempts` it must not join (bounded: a member joins in well
    under a second here); restarted as it was, it joins. Then the leader is
    killed, a write goes through `z`, the leader comes back, and every
    server holds the same tree."""
    s3 = c.servers[3]
    with open(s3.cfg) as f:
        good_cfg = f.read()
    good_props = s3.props
    for props, text in attempts:
        s3.kill()
        c.wait_serving(ids=[1, 2])
        s3.props = props
        with open(s3.cfg, "w") as f:
            f.write(text)
        s3.start()
        deadline = time.time() + 5
        while time.time() < deadline:
            assert s3.mode() is None, f"server 3 joined with {props} / {text!r}"
            time.sleep(0.25)
    s3.kill()
    s3.props = good_props
    with open(s3.cfg, "w") as f:
        f.write(good_cfg)
    s3.start()
    c.wait_serving()
    leader = c.leader()
    c.servers[leader].kill()
    c.wait_serving(ids=[i for i in c.servers if i != leader])
    z.create("/after-failover", b"y")
    c.servers[leader].start()
    c.wait_serving()
    return same_everywhere(c)


def ssl_quorum(work, kinds=("rookeeper",) * 3):
    """sslQuorum=true with PEM key and trust stores: the ensemble serves and
    fails over; a member whose certificate nobody trusts, or one without
    TLS, cannot join, and joins once it has the trusted certificate."""
    certs = make_quorum_certs(os.path.join(work, "certs"))
    c = Cluster(list(kinds), BINARY, work, extra=quorum_tls_cfg(certs["member"], certs["ca"]))
    zs = []
    try:
        c.start_all()
        c.wait_serving()
        for i in c.servers:
            z = client(c.hosts([i]))
            zs.append(z)
            z.create(f"/tls{i}", b"x")
        with open(c.servers[3].cfg) as f:
            good = f.read()
        props = c.servers[3].props
        return outsider_then_member(c, zs[0], [
            (props, good.replace(certs["member"], certs["stranger"])),
            (props, good.replace("sslQuorum=true\n", "")),
        ])
    finally:
        close_clients(zs)
        c.stop_all()


def roll_settings(c, steps, first):
    """Starts `c` with the zoo.cfg lines `first`, then for each of `steps`
    restarts the servers one at a time with that step's lines instead; the
    ensemble serves and takes a write after every restart, and every server
    ends with the same tree."""
    keys = {line.split("=")[0] for step in [first, *steps] for line in step.splitlines()}
    for srv in c.servers.values():
        with open(srv.cfg) as f:
            text = f.read()
        with open(srv.cfg, "w") as f:
            f.write(first + text)
    c.start_all()
    c.wait_serving()
    z = client(c.hosts())
    try:
        n = 0
        for step in steps:
            for i, srv in c.servers.items():
                srv.stop()
                with open(srv.cfg) as f:
                    text = "".join(line for line in f.readlines() if line.split("=")[0] not in keys)
                with open(srv.cfg, "w") as f:
                    f.write(step + text)
                srv.start()
                c.wait_serving()
                n += 1
                z.create(f"/roll{n}", str(i).encode())
    finally:
        close_clients([z])
    return same_everywhere(c)


def ssl_quorum_rolling(work, kinds=("rookeeper", "apache", "rookeeper")):
    """Turning quorum TLS on one server at a time, as ZooKeeper's guide does:
    portUnification=true everywhere (ports take TLS and plain), then
    sslQuorum=true server by server, then portUnification off server by
    server."""
    certs = make_quorum_certs(os.path.join(work, "certs"))
    stores = quorum_tls_cfg(certs["member"], certs["ca"]).replace("sslQuorum=true\n", "")
    c = Cluster(list(kinds), BINARY, work, extra=stores)
    with c.failing_with_stacks():
        return roll_settings(
            c, ["sslQuorum=true\nportUnification=true\n", "sslQuorum=true\n"], "portUnification=true\n"
        )


def sasl_quorum_rolling(work, kinds=("rookeeper", "apache", "rookeeper")):
    """Turning quorum SASL on one server at a time, as ZooKeeper's guide
    does: enableSasl everywhere (nothing required), then learnerRequireSasl
    server by server, then serverRequireSasl server by server."""
    jaas = write_jaas(os.path.join(work, "jaas.conf"), "member-secret")
    c = Cluster(list(kinds), BINARY, work, props=[f"java.security.auth.login.config={jaas}"])
    on = "quorum.auth.enableSasl=true\n"
    with c.failing_with_stacks():
        return roll_settings(
            c,
            [on + "quorum.auth.learnerRequireSasl=true\n", SASL_REQUIRED],
            on,
        )


def write_jaas(path, learner_password):
    with open(path, "w") as f:
        f.write(
            "QuorumServer {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n"
            '  user_member="member-secret";\n};\n'
            "QuorumLearner {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n"
            f'  username="member"\n  password="{learner_password}";\n}};\n'
        )
    return path


SASL_REQUIRED = (
    "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\nquorum.auth.serverRequireSasl=true\n"
)


def sasl_quorum(work, kinds=("rookeeper",) * 3):
    """Quorum SASL (DIGEST-MD5, JAAS QuorumServer/QuorumLearner), required
    both ways: the ensemble serves and fails over; a member with the wrong
    password, or one that does not authenticate, cannot join; with the
    right password it does."""
    good = write_jaas(os.path.join(work, "jaas.conf"), "member-secret")
    wrong = write_jaas(os.path.join(work, "jaas-wrong.conf"), "not-the-secret")
    c = Cluster(list(kinds), BINARY, work, props=[f"java.security.auth.login.config={good}"], extra=SASL_REQUIRED)
    zs = []
    try:
        c.start_all()
        c.wait_serving()
        z = client(c.hosts())
        zs.append(z)
        z.create("/sasl", b"x")
        with open(c.servers[3].cfg) as f:
            cfg = f.read()
        return outsider_then_member(c, z, [
            ([f"-Djava.security.auth.login.config={wrong}"], cfg),
            (c.servers[3].props, cfg.replace("quorum.auth.learnerRequireSasl=true", "quorum.auth.learnerRequireSasl=false")),
        ])
    finally:
        close_clients(zs)
        c.stop_all()


def read_only(work, kinds=("rookeeper",) * 3):
    """readonlymode.enabled: a server cut off from the quorum serves reads
    to read-only clients, refuses their writes, says `ro`, and rejoins."""
    from kazoo.exceptions import NotReadOnlyCallError
    from kazoo.protocol.states import KeeperState

    c = Cluster(list(kinds), BINARY, work, props=["readonlymode.enabled=true"])
    try:
        c.start_all()
        c.wait_serving()
        z = client(c.hosts())
        z.create("/ro", b"before")
        z.stop()
        z.close()
        survivor = [i for i in c.servers if i != c.leader()][0]
        for i in c.servers:
            if i != survivor:
                c.servers[i].stop()
        s = c.servers[survivor]
        wait_for(lambda: four(s.client_port, "isro") == "ro", "isro to say ro")
        assert s.mode() == "read-only", s.mode()
        states = []
        ro = KazooClient(hosts=c.hosts([survivor]), timeout=10, read_only=True)
        ro.add_listener(lambda st: states.append(ro.client_state))
        ro.start(timeout=WAIT)
        assert ro.client_state == KeeperState.CONNECTED_RO, ro.client_state
        assert ro.get("/ro")[0] == b"before"
        try:
            ro.create("/nope", b"x")
            raise AssertionError("a write succeeded on a read-only server")
        except NotReadOnlyCallError:
            pass
        ro.stop()
        ro.close()
        # A client that does not allow read-only mode is not served.
        assert_refused(c.hosts([survivor]), 3)
        for i in c.servers:
            if i != survivor:
                c.servers[i].start()
        c.wait_serving()
        assert four(s.client_port, "isro") == "rw"
        z = client(c.hosts([survivor]))
        z.create("/rw-again", b"y")
        z.stop()
        z.close()
    finally:
        c.stop_all()


def reconfig(work, kinds=("rookeeper",) * 3):
    """Incremental reconfig as kazoo's TestReconfig drives it: only the super
    user may, bad input is BadArguments, an observer joins and leaves, a
    stale config version is BadVersion; the new config reaches every
    server's /zookeeper/config."""
    from kazoo.exceptions import BadArgumentsError, BadVersionError, NoAuthError

    c = Cluster(
        list(kinds),
        BINARY,
        work,
        props=["zookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU="],
        extra="reconfigEnabled=true\n",
    )
    try:
        c.start_all()
        c.wait_serving()
        plain = client(c.hosts([1]))
        su = KazooClient(hosts=c.hosts([2]), timeout=10, auth_data=[("digest", "super:test")])
        su.start(timeout=WAIT)
        from cluster import free_port

        p1, p2, p3 = free_port(), free_port(), free_port()
        joining = f"server.100=0.0.0.0:{p1}:{p2}:observer;0.0.0.0:{p3}"
        try:
            plain.reconfig(joining=joining, leaving=None, new_members=None)
            raise AssertionError("reconfig without super succeeded")
        except NoAuthError:
            pass
        try:
            plain.reconfig(joining="some thing", leaving=None, new_members=None)
            raise AssertionError("bad reconfig input accepted")
        except BadArgumentsError:
            pass
        data, _ = su.reconfig(joining=joining, leaving=None, new_members=None)
        assert joining.encode() in data, data
        for i in c.servers:
            z = client(c.hosts([i]))
            z.sync("/zookeeper/config")
            assert joining.encode() in z.get("/zookeeper/config")[0], i
            z.stop()
            z.close()
        data, _ = su.reconfig(joining=None, leaving="100", new_members=None)
        assert joining.encode() not in data
        curver = int(data.decode().split("\n")[-1].split("=")[1], base=16)
        try:
            su.reconfig(joining=joining, leaving=None, new_members=None, from_config=curver + 1)
            raise AssertionError("stale config version accepted")
        except BadVersionError:
            pass
        for z in (plain, su):
            z.stop()
            z.close()
        # A follower becomes an observer (and the ensemble goes on).
        f = [i for i in c.servers if c.servers[i].mode() == "follower"][0]
        cp, qp, ep = c.servers[f].ports
        su = KazooClient(hosts=c.hosts([c.leader()]), timeout=10, auth_data=[("digest", "super:test")])
        su.start(timeout=WAIT)
        spec = f"server.{f}=127.0.0.1:{qp}:{ep}:observer;127.0.0.1:{cp}"
        data, _ = su.reconfig(joining=spec, leaving=None, new_members=None)
        assert spec.encode() in data, data
        curver = int(data.decode().split("\n")[-1].split("=")[1], base=16)
        wait_for(lambda: c.servers[f].mode() == "observer", f"server {f} to observe")
        su.create("/after-role-change", b"z")
        su.stop()
        su.close()
        # The configuration survives a restart of every server (zoo.cfg now
        # points at the dynamic file written by the reconfig).
        c.stop_all()
        c.start_all()
        c.wait_serving()
        for i in c.servers:
            z = client(c.hosts([i]))
            got = z.get("/zookeeper/config")[0].decode()
            z.stop()
            z.close()
            assert got.split("\n")[-1] == f"version={curver:x}", (i, got)
            assert "dynamicConfigFile=" in open(c.servers[i].cfg).read()
    finally:
        c.stop_all()


def expiry(work):
    """A client that dies holding an ephemeral on a follower: the leader
    expires its session and the ephemeral disappears on every server."""
    import subprocess

    c = Cluster(["rookeeper"] * 3, BINARY, work)
    try:
        c.start_all()
        c.wait_serving()
        f = [i for i in c.servers if c.servers[i].mode() == "follower"][0]
        code = (
            "import sys, time\n"
            "from kazoo.client import KazooClient\n"
            f"z = KazooClient(hosts='{c.hosts([f])}', timeout=2.0)\n"
            "z.start(timeout=30)\n"
            "z.create('/doomed', b'x', ephemeral=True)\n"
            "print('ready', flush=True)\n"
            "time.sleep(600)\n"
        )
        p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline().strip() == "ready"
        finally:
            p.kill()
            p.wait()
        watchers = {i: client(c.hosts([i])) for i in c.servers}
        for i, z in watchers.items():
            wait_for(lambda z=z: z.exists("/doomed") is None, f"the ephemeral to go on server {i}", timeout=30)
        for z in watchers.values():
            z.stop()
            z.close()
    finally:
        c.stop_all()


def five(work):
    c = Cluster(["rookeeper"] * 5, BINARY, work)
    try:
        for i in (1, 2):
            c.servers[i].start()
            time.sleep(1.0)
        assert c.servers[1].mode() is None and c.servers[2].mode() is None, c.modes()
        c.servers[3].start()
        c.wait_serving(ids=[1, 2, 3])
        assert c.leader() == 3, c.modes()
        for i in (4, 5):
            c.servers[i].start()
        m = c.wait_serving()
        assert m == {1: "follower", 2: "follower", 3: "leader", 4: "follower", 5: "follower"}, m
    finally:
        c.stop_all()


def mixed(work, kinds, first):
    """`first` starts alone first so that, with the largest id among the
    first two, it leads; then the leader is killed twice to move it."""
    c = Cluster(kinds, BINARY, work)
    try:
        c.servers[first].start()
        time.sleep(3 if kinds[first - 1] == "apache" else 0.5)
        for i in c.servers:
            if i != first:
                c.servers[i].start()
        c.wait_serving()
        # A follower of the other kind misses more than the leader's
        # in-memory history (Apache keeps 500 txns): it comes back by SNAP.
        leader = c.leader()
        behind = [i for i in c.servers if i != leader and c.servers[i].kind != c.servers[leader].kind]
        if behind:
            b = behind[0]
            c.servers[b].stop()
            z = client(c.hosts([i for i in c.servers if i != b]))
            z.ensure_path("/gap")
            for j in range(700):
                z.create(f"/gap/n{j}", b"g")
            z.stop()
            z.close()
            c.servers[b].start()
            c.wait_serving()
            same_everywhere(c)
        moves = []
        for round_ in range(3):
            leader = c.leader()
            moves.append((leader, c.servers[leader].kind))
            zks = {i: client(c.hosts([i])) for i in c.servers if c.servers[i].running()}
            for i, z in zks.items():
                z.ensure_path("/m")
                z.create(f"/m/r{round_}-s{i}", f"{c.servers[i].kind}".encode())
            for i, z in zks.items():
                z.sync("/m")
                names = z.get_children("/m")
                assert all(f"r{round_}-s{j}" in names for j in zks), (i, names)
            for z in zks.values():
                z.stop()
                z.close()
            same_everywhere(c)
            if round_ == 2:
                break
            c.servers[leader].stop()
            c.wait_serving(ids=[i for i in c.servers if i != leader])
            c.servers[leader].start()
            c.wait_serving()
        check_digests(c)
        return moves
    finally:
        c.stop_all()


def check_digests(c):
    """Leaders, Apache's and ours, send each txn's tree digest: every server
    compares it with its tree after applying the txn, and none may differ
    (ours count zk_digest_mismatches_count, as Apache's DataTree.compareDigest
    does; Apache's log the first mismatch)."""
    def log(s):
        with open(os.path.join(s.dir, "server.log"), errors="replace") as f:
            return f.read()

    ours = [s for s in c.servers.values() if s.kind == "rookeeper" and s.running()]
    for s in ours:
        assert mntr(s)["zk_digest_mismatches_count"] == "0", (s.sid, s.log_tail())
    for s in c.servers.values():
        if s.kind == "apache":
            assert "First digest mismatch" not in log(s), (s.sid, s.log_tail())
            # 3.8.0's learner fails on a COMMIT between NEWLEADER and
            # UPTODATE (ZOOKEEPER-4394); our leader holds those back.
            assert 'because "pif" is null' not in log(s), (s.sid, s.log_tail())
    assert any("txn digests are checked" in log(s) for s in ours), \
        "no rookeeper server compared a leader's digests"


def observer_under_load(work, restarts=3, kinds=("rookeeper",) * 4, om=False):
    """An observer restarted while a client writes through the participants:
    each time it syncs with txns committing during its sync, whose INFORMs
    the leader holds until its UPTODATE (a follower hosting it with
    observerMasterPort, `om`, sends them after NEWLEADER, as Apache's
    does); it must end with every write."""
    extra = f"observerMasterPort={free_port()}\n" if om else ""
    c = Cluster(list(kinds), BINARY, work, observers=(4,), own_hosts=om, extra=extra)
    acked, errors = [], []
    stop = threading.Event()
    with c.failing_with_stacks(stop):
        c.start_all()
        c.wait_serving()
        t = start_writer(c, "/obsload", acked, errors, stop, ids=[1, 2, 3])
        for _ in range(restarts):
            before = len(acked)
            wait_for(lambda: len(acked) > before + 30, "writes before the restart")
            c.servers[4].kill()
            c.servers[4].start()
            c.wait_serving()
        finish_writes(c, "/obsload", acked, t, stop, "after the observer's restarts")
        return len(acked)


def start_writer(c, path, acked, errors, stop, pause=0.0, ids=None):
    """A thread creating path/wNNNNNN through every server (or `ids`) until
    `stop`: the numbers acknowledged go to `acked`, failures to `errors`."""

    def run():
        z = client(c.hosts(ids), timeout=20.0)
        z.ensure_path(path)
        k = 0
        while not stop.is_set():
            try:
                z.create(f"{path}/w{k:06d}", str(k).encode())
                acked.append(k)
            except KazooException as e:
                errors.append(repr(e))
                time.sleep(0.1)
            k += 1
            time.sleep(pause)
        z.stop()
        z.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def finish_writes(c, path, acked, writer, stop, what):
    """More writes once the faults are over, then the writer stops: every
    acknowledged one must be in the tree, the same on every server."""
    before = len(acked)
    wait_for(lambda: len(acked) > before + 20, f"writes {what}")
    stop.set()
    writer.join(timeout=60)
    z = client(c.hosts())
    z.sync(path)
    have = {int(n[1:]) for n in z.get_children(path)}
    z.stop()
    z.close()
    lost = [k for k in acked if k not in have]
    assert not lost, f"{what}: acknowledged writes lost: {lost[:10]}"
    same_everywhere(c)


def kill_under_load(work, kinds=("rookeeper",) * 3, kills=int(os.environ.get("KILLS", "4"))):
    """SIGKILL the leader again and again while a client writes through
    every server: every acknowledged write survives, everywhere."""
    c = Cluster(list(kinds), BINARY, work)
    acked, errors = [], []
    stop = threading.Event()
    with c.failing_with_stacks(stop):
        c.start_all()
        c.wait_serving()
        t = start_writer(c, "/load", acked, errors, stop)
        for _ in range(kills):
            before = len(acked)
            wait_for(lambda: len(acked) > before + 30, "writes before the kill")
            leader = c.leader()
            c.servers[leader].kill()
            c.wait_serving(ids=[i for i in c.servers if i != leader])
            c.servers[leader].start()
            c.wait_serving()
        finish_writes(c, "/load", acked, t, stop, "after the last kill")
        return len(acked)


def chaos(work, kinds=("rookeeper",) * 3):
    """Seeded random faults while a client writes through every server:
    SIGKILL, SIGTERM or SIGSTOP one server (the leader half the time), kill
    two at once (no quorum for a while) or all three (a whole-ensemble
    crash), each followed by a restart. Every acknowledged write survives,
    and every server ends with the same tree. CHAOS_SEED and CHAOS_EVENTS
    choose the run; the seed is in the result, to replay a failure."""
    seed = int(os.environ.get("CHAOS_SEED", "1"))
    events = int(os.environ.get("CHAOS_EVENTS", "8"))
    rng = random.Random(seed)
    c = Cluster(list(kinds), BINARY, work)
    acked, errors, done = [], [], []
    stop = threading.Event()
    with c.failing_with_stacks(stop):
        c.start_all()
        c.wait_serving()
        t = start_writer(c, "/chaos", acked, errors, stop)
        ids = list(c.servers)
        for n in range(events):
            before = len(acked)
            wait_for(lambda: len(acked) > before + 20, f"writes before event {n} (seed {seed}: {done})")
            leader = c.leader()
            victim = leader if rng.random() < 0.5 else rng.choice([i for i in ids if i != leader])
            what = rng.choice(["kill", "term", "pause", "kill-two", "kill-all"])
            done.append(f"{what}:{victim}{'L' if victim == leader else ''}")
            if what in ("kill", "term"):
                s = c.servers[victim]
                s.kill() if what == "kill" else s.stop()
                if rng.random() < 0.5:
                    c.wait_serving(ids=[i for i in ids if i != victim])
                s.start()
            elif what == "pause":
                proc = c.servers[victim].proc
                proc.send_signal(signal.SIGSTOP)
                time.sleep(rng.uniform(0.2, 3.0))
                proc.send_signal(signal.SIGCONT)
            elif what == "kill-two":
                other = rng.choice([i for i in ids if i != victim])
                for i in (victim, other):
                    c.servers[i].kill()
                time.sleep(rng.uniform(0.0, 1.5))
                for i in (other, victim):
                    c.servers[i].start()
            else:
                for i in ids:
                    c.servers[i].kill()
                for i in rng.sample(ids, len(ids)):
                    c.servers[i].start()
            c.wait_serving()
        finish_writes(c, "/chaos", acked, t, stop, f"after the last event (seed {seed}: {done})")
        check_digests(c)
        return f"seed {seed}: {' '.join(done)}; {len(acked)} writes acknowledged"


class CreateContainerReq(kser.Create):
    """createContainer (opcode 19): Create's record; the reply's path comes
    first, its stat after (ignored)."""
    type = 19


class CreateTtlReq(namedtuple("CreateTtlReq", "path data acl flags ttl")):
    """createTTL (opcode 21): Create's record and the TTL in ms."""
    type = 21

    def serialize(self):
        b = kser.Create(self.path, self.data, self.acl, self.flags).serialize()
        b.extend(kser.long_struct.pack(self.ttl))
        return b

    @classmethod
    def deserialize(cls, bytes, offset):
        return kser.read_string(bytes, offset)[0]


def create_special(z, path, req):
    result = z.handler.async_result()
    z._call(req, result)
    assert result.get(timeout=WAIT) == path


def digest_ops(work, kinds=("rookeeper",) * 3):
    """Every kind of txn a leader makes, each checked by every member
    against the digest the leader predicted: sequential and ephemeral
    creates, setData and setACL with versions, multis (one failing and
    rolled back), a closed session's ephemerals, an emptied container and
    an expired TTL node removed by the leader, deletes."""
    from kazoo.security import make_acl, make_digest_acl
    c = Cluster(list(kinds), BINARY, work, props=[
        "zookeeper.extendedTypesEnabled=true",
        "znode.container.checkIntervalMs=100",
    ])
    try:
        c.start_all()
        c.wait_serving()
        z = client(c.hosts())
        z.create("/d", b"root")
        for i in range(5):
            z.create("/d/seq-", str(i).encode(), sequence=True)
        for v in range(3):
            z.set("/d", f"v{v}".encode(), version=v)
        z.create("/d/a", b"acl")
        # Still readable by all: the trees are compared by reading them.
        acl = [make_acl("world", "anyone", read=True), make_digest_acl("u", "p", all=True)]
        z.set_acls("/d/a", acl, version=0)
        t = z.transaction()
        t.create("/d/m1", b"one")
        t.set_data("/d", b"multi", version=3)
        t.check("/d/m1", 0)
        t.delete("/d/seq-0000000000")
        results = t.commit()
        assert not any(isinstance(r, Exception) for r in results), results
        t = z.transaction()
        t.create("/d/rolled-back", b"x")
        t.set_data("/d/m1", b"y")
        t.check("/d", 99)
        assert any(isinstance(r, Exception) for r in t.commit())
        other = client(c.hosts())
        for i in range(3):
            other.create(f"/d/e{i}", b"mine", ephemeral=True)
        other.create("/d/eseq-", b"", ephemeral=True, sequence=True)
        other.stop()
        other.close()
        # kazoo has no container or TTL creates: ZooKeeper's requests by hand.
        create_special(z, "/d/box", CreateContainerReq("/d/box", b"", OPEN_ACL_UNSAFE, 4))
        z.create("/d/box/item", b"in")
        z.delete("/d/box/item")
        create_special(z, "/d/ttl", CreateTtlReq("/d/ttl", b"t", OPEN_ACL_UNSAFE, 5, 200))
        z.create("/d/gone", b"")
        z.delete("/d/gone")
        wait_for(lambda: z.exists("/d/box") is None and z.exists("/d/ttl") is None,
                 "the leader to remove the container and the TTL node")
        z.stop()
        z.close()
        same_everywhere(c)
        check_digests(c)
    finally:
        c.stop_all()


def stop_leader(work, kinds=("rookeeper",) * 3, pause_kind="rookeeper"):
    """SIGSTOP the leader (a partition or a long pause: it is gone but does
    not know it) while clients write through every server and one client
    writes only through it; the others elect a new leader and go on. After
    SIGCONT the old leader must step down, not commit anything on its own,
    and rejoin: every acknowledged write of both clients survives."""
    c = Cluster(list(kinds), BINARY, work)
    acked, errors, pinned, pinned_errors = [], [], [], []
    stop = threading.Event()
    with c.failing_with_stacks(stop):
        c.start_all()
        c.wait_serving()
        # Restarting the leader moves leadership; until a `pause_kind` leads.
        for _ in range(4):
            leader = c.leader()
            if c.servers[leader].kind == pause_kind:
                break
            c.servers[leader].stop()
            c.wait_serving(ids=[i for i in c.servers if i != leader])
            c.servers[leader].start()
            c.wait_serving()
        assert c.servers[leader].kind == pause_kind, f"no {pause_kind} server would lead"
        others = [i for i in c.servers if i != leader]
        writers = [
            start_writer(c, "/all", acked, errors, stop),
            start_writer(c, "/pinned", pinned, pinned_errors, stop, ids=[leader]),
        ]
        wait_for(lambda: len(acked) > 30 and len(pinned) > 30, "writes before the pause")
        proc = c.servers[leader].proc
        proc.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: any(c.servers[i].mode() == "leader" for i in others), "a new leader")
            before = len(acked)
            wait_for(lambda: len(acked) > before + 30, "writes while the old leader is paused")
        finally:
            proc.send_signal(signal.SIGCONT)
        c.wait_serving()
        before, before_pinned = len(acked), len(pinned)
        wait_for(lambda: len(acked) > before + 30, "writes after the old leader came back")
        wait_for(lambda: len(pinned) > before_pinned + 10, "writes through the old leader again")
        stop.set()
        for t in writers:
            t.join(timeout=60)
        z = client(c.hosts())
        z.sync("/")
        for path, ks in (("/all", acked), ("/pinned", pinned)):
            have = {int(n[1:]) for n in z.get_children(path)}
            lost = [k for k in ks if k not in have]
            assert not lost, f"acknowledged writes under {path} lost: {lost[:10]}"
        z.stop()
        z.close()
        same_everywhere(c)
        return f"paused {c.servers[leader].kind} leader {leader}", len(acked), len(pinned)


def rolling(work):
    """Three Apache servers replaced by rookeeper one by one, on the same
    dataDirs, with a client writing throughout: no acknowledged write lost."""
    c = Cluster(["apache"] * 3, BINARY, work)
    acked, errors = [], []
    stop = threading.Event()
    try:
        c.start_all()
        c.wait_serving()
        t = start_writer(c, "/roll", acked, errors, stop, pause=0.01)
        wait_for(lambda: len(acked) > 20, "first writes")
        # Followers first, the leader last (as an operator would).
        order = [i for i in c.servers if i != c.leader()] + [c.leader()]
        for i in order:
            s = c.servers[i]
            s.stop()
            s.kind = "rookeeper"
            s.start()
            c.wait_serving()
            before = len(acked)
            wait_for(lambda: len(acked) > before + 10, f"writes after replacing server {i}")
        stop.set()
        t.join(timeout=60)
        assert all(s.kind == "rookeeper" for s in c.servers.values())
        z = client(c.hosts())
        z.sync("/roll")
        have = {int(n[1:]) for n in z.get_children("/roll")}
        lost = [k for k in acked if k not in have]
        assert not lost, f"acknowledged writes lost: {lost[:10]}"
        z.stop()
        z.close()
        same_everywhere(c)
        return len(acked), len(errors)
    finally:
        stop.set()
        c.stop_all()


def trunc(work, kinds=("rookeeper",) * 3):
    """A server holding a txn the others never saw (written while it ran
    alone, as a leader's unreplicated proposal would be) rejoins after the
    others moved to a new epoch: it is told to TRUNC, drops that txn, takes
    the new epoch's txns, serves, and every tree is the same."""
    c = Cluster(list(kinds), BINARY, work)
    with c.failing_with_stacks():
        c.start_all()
        c.wait_serving()
        z = client(c.hosts())
        for i in range(10):
            z.create(f"/t{i}", b"x")
        z.stop()
        z.close()
        c.stop_all()
        a = c.servers[1]
        solo = os.path.join(a.dir, "solo.cfg")
        with open(a.cfg) as f:
            text = "".join(line for line in f if not line.startswith("server."))
        with open(solo, "w") as f:
            f.write(text)
        ensemble_cfg, a.cfg = a.cfg, solo
        a.start()
        try:
            wait_serving(a.client_port, WAIT, a.proc)
            z = client(c.hosts([1]))
            z.create("/abandoned", b"only on server 1")
            z.stop()
            z.close()
        finally:
            a.stop()
            a.cfg = ensemble_cfg
        for i in (2, 3):
            c.servers[i].start()
        c.wait_serving(ids=[2, 3])
        z = client(c.hosts([2, 3]))
        for i in range(5):
            z.create(f"/new{i}", b"y")
        z.stop()
        z.close()
        a.start()
        c.wait_serving()
        z = client(c.hosts([1]))
        z.sync("/")
        assert z.exists("/abandoned") is None, "the abandoned txn survived the TRUNC"
        assert z.exists("/new4") is not None, "the new epoch's txns did not arrive"
        z.create("/after", b"z")
        z.stop()
        z.close()
        same_everywhere(c)
        # After a restart it comes back from its own disk the same way.
        a.stop()
        a.start()
        c.wait_serving()
        return same_everywhere(c)


def mntr(s):
    out = {}
    for line in four(s.client_port, "mntr").splitlines():
        k, _, v = line.partition("\t")
        out[k] = v
    return out


def create_many(z, prefix, n, data):
    for start in range(0, n, 200):
        rs = [z.create_async(f"{prefix}{i}", data) for i in range(start, min(n, start + 200))]
        for r in rs:
            r.get(timeout=WAIT)


def diff_sync(work):
    """A follower more txns behind than the leader keeps in memory (1000)
    is sent a DIFF read from the leader's txn log while that is cheaper than
    a snapshot (zookeeper.snapshotSizeFactor, 0.33 of the newest snapshot),
    a SNAP once it is not; either way it ends with the same tree. Checked
    by the leader's diff_count and snap_count."""
    c = Cluster(["rookeeper"] * 3, BINARY, work)
    with c.failing_with_stacks():
        c.start_all()
        c.wait_serving()
        z = client(c.hosts())
        z.ensure_path("/base")
        create_many(z, "/base/n", 3000, b"b" * 300)
        z.stop()
        z.close()
        # Restarted, each server snapshots what it replayed: ~1 MB.
        c.stop_all()
        c.start_all()
        c.wait_serving()
        leader = c.leader()
        f = [i for i in c.servers if i != leader][0]
        before = mntr(c.servers[leader])
        c.servers[f].kill()
        z = client(c.hosts([i for i in c.servers if i != f]))
        z.ensure_path("/small")
        create_many(z, "/small/n", 1500, b"s")
        c.servers[f].start()
        c.wait_serving()
        after = mntr(c.servers[leader])
        assert c.leader() == leader, "the leader changed"
        assert int(after["zk_diff_count"]) == int(before["zk_diff_count"]) + 1, (before, after)
        assert after["zk_snap_count"] == before["zk_snap_count"], (before, after)
        # One DIFF sync in flight: counted when it began and when it ended.
        assert int(after["zk_cnt_inflight_diff_count"]) == int(before["zk_cnt_inflight_diff_count"]) + 2, (before, after)
        assert int(after["zk_max_inflight_diff_count"]) >= 1, after
        # The quorum figures of mntr count what happened.
        assert int(after["zk_cnt_quorum_ack_latency"]) >= 1500, after
        assert int(after["zk_proposal_count"]) >= 1500, after
        # The killed follower's link closed on the leader's side.
        assert int(after["zk_cnt_socket_closing_time"]) >= 1, after
        # Each member applied every commit, in commit rounds.
        assert int(after["zk_request_commit_queued"]) >= 1500, after
        assert int(after["zk_sum_write_commit_proc_issued"]) >= 1500, after
        back = mntr(c.servers[f])
        assert back["zk_cnt_follower_sync_time"] == "1", back
        assert int(back["zk_cnt_leader_unavailable_time"]) == 0, back
        other = mntr(c.servers[[i for i in c.servers if i not in (f, leader)][0]])
        assert int(other["zk_learner_proposal_received_count"]) >= 1500, other
        assert int(other["zk_cnt_commit_propagation_latency"]) >= 1500, other
        assert int(other["zk_cnt_proposal_ack_creation_latency"]) >= 1500, other
        assert int(other["zk_cnt_write_final_proc_time_ms"]) >= 1500, other
        # The client's 1500 writes each waited in its session's queue on the
        # server it used (the leader or the other follower).
        queued = sum(int(m["zk_cnt_requests_in_session_queue"]) for m in (after, other))
        assert queued >= 1500, (after, other)
        committed = sum(int(m["zk_cnt_write_commitproc_time_ms"]) for m in (after, other))
        assert committed >= 1500, (after, other)
        # Their commits, timed from arrival to applied where the client was;
        # on the other member they were other servers' writes.
        local = sum(int(m["zk_cnt_local_write_committed_time_ms"]) for m in (after, other))
        assert local >= 1500, (after, other)
        assert int(other["zk_cnt_local_write_committed_time_ms"]) + int(other["zk_cnt_server_write_committed_time_ms"]) >= 1500, other
        same_everywhere(c)
        # 1500 txns of 1 KB each outweigh a third of the snapshot: SNAP.
        c.servers[f].kill()
        z.ensure_path("/big")
        create_many(z, "/big/n", 1500, b"B" * 1024)
        c.servers[f].start()
        c.wait_serving()
        z.stop()
        z.close()
        last = mntr(c.servers[leader])
        assert int(last["zk_snap_count"]) == int(after["zk_snap_count"]) + 1, (after, last)
        assert int(last["zk_cnt_inflight_snap_count"]) == int(after["zk_cnt_inflight_snap_count"]) + 2, (after, last)
        return same_everywhere(c)


def throttled(work):
    """ZooKeeper's request throttler with THROTTLEDOP on every member
    (server::admission): pipelined writes through the leader and through
    followers either apply or come back THROTTLEDOP having changed nothing;
    what the clients saw throttled is what the members' mntr counted."""
    props = (
        "zookeeper.request_throttle_max_requests=1",
        "zookeeper.request_throttle_stall_time=1",
        "zookeeper.throttled_op_wait_time=1",
    )
    c = Cluster(["rookeeper"] * 3, BINARY, work, props=props)
    zks = {}
    seen = [0]

    def until_done(f):
        # Any request may be throttled, setup and checks too: count, retry.
        while True:
            try:
                return f()
            except ThrottledOpError:
                seen[0] += 1

    try:
        c.start_all()
        c.wait_serving()
        zks = {i: client(c.hosts([i])) for i in c.servers}
        for i, z in zks.items():
            until_done(lambda: z.ensure_path(f"/thr/{i}"))
        sent = {i: [z.set_async(f"/thr/{i}", str(n).encode()) for n in range(200)] for i, z in zks.items()}
        for i, rs in sent.items():
            ok = 0
            for r in rs:
                try:
                    r.get(timeout=30)
                    ok += 1
                except ThrottledOpError:
                    seen[0] += 1
            z = zks[i]
            until_done(lambda: z.sync(f"/thr/{i}"))
            _, st = until_done(lambda: z.get(f"/thr/{i}"))
            # A throttled set changed nothing: the version counts the rest.
            assert st.version == ok, (i, st.version, ok)
        counted = sum(int(mntr(s)["zk_throttled_ops"]) for s in c.servers.values())
        assert counted == seen[0], (counted, seen[0])
        return f"{seen[0]} throttled"
    finally:
        for z in zks.values():
            z.stop()
            z.close()
        c.stop_all()


SCENARIOS = {
    "three": three,
    "five": five,
    "observer": observer,
    "observer-under-load": observer_under_load,
    "observer-master": observer_master,
    "observer-master-under-load": lambda w: observer_under_load(w, om=True),
    "observer-master-under-load-apache-observer": lambda w: observer_under_load(
        w, kinds=("rookeeper",) * 3 + ("apache",), om=True
    ),
    # Apache's observer syncs from our followers; ours from Apache's.
    "observer-master-apache-observer": lambda w: observer_master(w, ("rookeeper",) * 3 + ("apache",)),
    "observer-master-apache-voters": lambda w: observer_master(w, ("apache",) * 3 + ("rookeeper",)),
    "hierarchical": hierarchical,
    "hierarchical-mixed": lambda w: hierarchical(w, ("apache", "rookeeper", "rookeeper")),
    "ssl-quorum": ssl_quorum,
    "ssl-quorum-mixed": lambda w: ssl_quorum(w, ("apache", "rookeeper", "rookeeper")),
    "ssl-quorum-mixed-apache": lambda w: ssl_quorum(w, ("rookeeper", "apache", "apache")),
    "ssl-quorum-rolling": ssl_quorum_rolling,
    # Apache's observer syncs from our followers' TLS observer master port.
    "ssl-quorum-observer-master": lambda w: observer_master(w, ("rookeeper",) * 3 + ("apache",), tls=True),
    "sasl-quorum": sasl_quorum,
    "sasl-quorum-rolling": sasl_quorum_rolling,
    "sasl-quorum-mixed": lambda w: sasl_quorum(w, ("apache", "rookeeper", "rookeeper")),
    "sasl-quorum-mixed-apache": lambda w: sasl_quorum(w, ("rookeeper", "apache", "apache")),
    "expiry": expiry,
    "read-only": read_only,
    "reconfig": reconfig,
    "reconfig-apache": lambda w: reconfig(w, ("apache",) * 3),
    "mixed-rk-leader": lambda w: mixed(w, ["apache", "apache", "rookeeper"], 3),
    "mixed-apache-leader": lambda w: mixed(w, ["rookeeper", "rookeeper", "apache"], 3),
    "rolling": rolling,
    "kill-under-load": kill_under_load,
    "chaos": chaos,
    "digest-ops": digest_ops,
    "digest-ops-mixed": lambda w: digest_ops(w, ("rookeeper", "apache", "rookeeper")),
    # Apache's servers and ours crash, pause and restart side by side.
    "chaos-mixed": lambda w: chaos(w, ("rookeeper", "apache", "rookeeper")),
    # The leader moves between Apache's servers and ours with every kill.
    "kill-under-load-mixed": lambda w: kill_under_load(w, ("rookeeper", "apache", "rookeeper")),
    "kill-under-load-mixed-apache": lambda w: kill_under_load(w, ("apache", "rookeeper", "apache")),
    "trunc": trunc,
    "diff-sync": diff_sync,
    "stop-leader": stop_leader,
    # The paused leader is Apache's (ours must move on) / ours (Apache's must).
    "stop-leader-apache": lambda w: stop_leader(w, ("rookeeper", "rookeeper", "apache"), "apache"),
    "stop-leader-rk-among-apache": lambda w: stop_leader(w, ("apache", "apache", "rookeeper")),
    # Apache's leader tells our server to TRUNC; ours tells Apache's.
    "trunc-apache-leader": lambda w: trunc(w, ("rookeeper", "apache", "apache")),
    "trunc-rk-leader": lambda w: trunc(w, ("apache", "rookeeper", "rookeeper")),
    "throttled": throttled,
}


def main():
    global BINARY
    BINARY = sys.argv[1]
    names = sys.argv[2:] or list(SCENARIOS)
    failed = 0
    for name in names:
        work = tempfile.mkdtemp(prefix=f"rk-ens-{name}-")
        t0 = time.time()
        try:
            r = SCENARIOS[name](work)
            print(f"ok: {name} ({time.time() - t0:.1f}s){'' if r is None else f' {r}'}", flush=True)
            shutil.rmtree(work, ignore_errors=True)
        except Exception as e:  # report, keep the directory, go on
            failed += 1
            print(f"FAILED: {name} ({time.time() - t0:.1f}s): {e}\n(logs kept in {work})", file=sys.stderr, flush=True)
    print(f"ensemble: {len(names) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
