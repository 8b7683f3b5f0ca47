"""Crash loop: a client writes as fast as it can, recording every write the
server acknowledged, while the server is killed with SIGKILL at a random
moment and restarted. After every restart every acknowledged write must be
there: each acknowledged create exists with its data, and the counter node
holds at least the last acknowledged value.

Usage: crash_loop.py PATH/TO/rookeeper [CYCLES] [SEED]
Bounded: CYCLES (default 30) kills; every wait has a timeout.
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NodeExistsError
from kazoo.handlers.threading import KazooTimeoutError

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from loopback import free_port, wait_port  # noqa: E402

WAIT = 30.0


def start(binary, cfg, log):
    proc = subprocess.Popen([binary, "server", cfg], stdout=log, stderr=subprocess.STDOUT)
    return proc


def connect(port):
    c = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10.0, connection_retry={"max_tries": 3})
    c.start(timeout=WAIT)
    return c


def writer(port, acked, stop, counter_acked):
    """Writes until the connection goes; records what was acknowledged."""
    try:
        c = connect(port)
    except Exception:
        return
    try:
        while not stop.is_set():
            n = len(acked)
            path = f"/crash/n{n:08d}"
            data = f"v{n}".encode()
            try:
                c.create(path, data)
            except NodeExistsError:
                # Our previous attempt succeeded but its reply was lost.
                pass
            acked.append((path, data))
            v = counter_acked[0] + 1
            c.set("/crash/counter", str(v).encode())
            counter_acked[0] = v
    except (KazooException, KazooTimeoutError, OSError):
        pass
    finally:
        try:
            c.stop()
            c.close()
        except Exception:
            pass


def main():
    binary = sys.argv[1]
    cycles = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"crash loop: {cycles} cycles, seed {seed}")
    work = tempfile.mkdtemp(prefix="rk-crash-")
    port = free_port()
    cfg = os.path.join(work, "zoo.cfg")
    with open(cfg, "w") as f:
        # A small snapCount so snapshots and log rolls happen during the run.
        f.write(f"tickTime=2000\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
                f"dataDir={work}/data\nsnapCount=200\npreAllocSize=64\n")
    log = open(os.path.join(work, "server.log"), "w")
    acked, counter_acked = [], [0]
    passed = failed = 0
    proc = start(binary, cfg, log)
    try:
        wait_port(port, WAIT, proc)
        c = connect(port)
        c.ensure_path("/crash")
        c.create("/crash/counter", b"0")
        c.stop()
        c.close()
        for cycle in range(cycles):
            stop = threading.Event()
            t = threading.Thread(target=writer, args=(port, acked, stop, counter_acked), daemon=True)
            t.start()
            time.sleep(rng.uniform(0.05, 0.6))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=WAIT)
            stop.set()
            t.join(timeout=WAIT)
            proc = start(binary, cfg, log)
            wait_port(port, WAIT, proc)
            c = connect(port)
            try:
                missing = [p for p, d in acked if c.exists(p) is None]
                wrong = [p for p, d in acked if p not in missing and c.get(p)[0] != d]
                counter = int(c.get("/crash/counter")[0])
                ok = not missing and not wrong and counter >= counter_acked[0]
                if ok:
                    passed += 1
                else:
                    failed += 1
                    print(f"cycle {cycle}: {len(missing)} acknowledged creates missing "
                          f"(first {missing[:3]}), {len(wrong)} with wrong data, counter {counter} "
                          f"< acknowledged {counter_acked[0]}" if counter < counter_acked[0] else
                          f"cycle {cycle}: {len(missing)} missing (first {missing[:3]}), {len(wrong)} wrong",
                          file=sys.stderr)
            finally:
                c.stop()
                c.close()
        print(f"{len(acked)} acknowledged creates, counter at {counter_acked[0]} after {cycles} kills")
    except Exception as e:
        failed += 1
        print(f"FAILED: {e}", file=sys.stderr)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        if failed:
            print(open(os.path.join(work, "server.log")).read()[-3000:], file=sys.stderr)
            print(f"kept {work} for inspection (seed {seed})", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"crash loop: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
