"""pytest plugin (run.sh loads it with -p): keep every server's log.

kazoo's harness writes each server's log to <tmpdir>/zookeeper.log and
deletes <tmpdir> when a test class ends (KazooTestCase.tearDownClass ->
ZookeeperCluster.terminate -> ManagedZooKeeper.destroy), so a failure's
server-side story is gone by the time anyone looks.  This plugin wraps
destroy() to append the log to $KAZOO_SERVER_LOGS/<tmpdir name>-server<id>.log
first (appended: a server dir is reused when the harness restarts a cluster),
and writes $KAZOO_SERVER_LOGS/timeline.txt: one line per test start/end with
the UTC time, the node id, the outcome and the log files of the servers the
test ran against, so a failing test's lines can be found in the server logs.

Without KAZOO_SERVER_LOGS set it does nothing.
"""

import datetime
import os

DIR = os.environ.get("KAZOO_SERVER_LOGS")


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f"
    )[:-3]


def _log_name(server):
    return "%s-server%s.log" % (
        os.path.basename(server.working_path),
        server.server_info.server_id,
    )


def _timeline(line):
    with open(os.path.join(DIR, "timeline.txt"), "a") as f:
        f.write(line + "\n")


def _servers():
    try:
        from kazoo.testing import harness
    except Exception:
        return []
    cluster = harness.CLUSTER
    if cluster is None:
        return []
    return list(cluster)


if DIR:
    os.makedirs(DIR, exist_ok=True)
    from kazoo.testing import common

    _orig_destroy = common.ManagedZooKeeper.destroy

    def _destroy(self):
        # Stop first so the server has written its last lines.
        self.stop()
        src = os.path.join(self.working_path, "zookeeper.log")
        if os.path.exists(src):
            try:
                with open(src, "rb") as fin, open(
                    os.path.join(DIR, _log_name(self)), "ab"
                ) as fout:
                    fout.write(
                        ("==== %s copied at destroy ====\n" % _now()).encode()
                    )
                    while True:
                        chunk = fin.read(1 << 20)
                        if not chunk:
                            break
                        fout.write(chunk)
            except OSError as e:
                _timeline("%s keep-logs error %s: %s" % (_now(), src, e))
        _orig_destroy(self)

    common.ManagedZooKeeper.destroy = _destroy

    def pytest_runtest_logstart(nodeid, location):
        _timeline("%s start %s" % (_now(), nodeid))

    def pytest_runtest_logreport(report):
        if report.when == "call" or report.outcome != "passed":
            _timeline(
                "%s %s %s %s servers=%s"
                % (
                    _now(),
                    report.when,
                    report.outcome,
                    report.nodeid,
                    ",".join(_log_name(s) for s in _servers()),
                )
            )
