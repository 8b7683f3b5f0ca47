"""Helpers the Python end-to-end tests share: free loopback ports and
waiting, bounded, for a server process to open its port."""

import os
import random
import socket
import time

_FLOOR = 10000
_given = set()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A port free on 127.0.0.1 right now, below the kernel's ephemeral
    range. Ports from bind(0) come from that range, which every outgoing
    connection draws from too: one picked that way for a server started
    later (an ensemble's quorum or election port) can be taken by another
    server's connect in between, and the server then cannot bind."""
    low = _ephemeral_low()
    rng = random.Random(os.getpid() ^ time.time_ns())
    for _ in range(1000):
        port = rng.randrange(_FLOOR, low) if low > _FLOOR + 1000 else 0
        if port in _given:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            port = s.getsockname()[1]
        except OSError:
            continue
        finally:
            s.close()
        _given.add(port)
        return port
    raise RuntimeError("no free loopback port")


def wait_port(port, timeout, proc=None):
    """Waits until something accepts on 127.0.0.1:port; fails if `proc`
    exits first or `timeout` seconds pass."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode} before opening port {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"server did not open port {port} within {timeout}s")


def wait_serving(port, timeout, proc=None):
    """Waits until the server on 127.0.0.1:port answers `srvr` as a serving
    server. Listening is not enough: Apache ZooKeeper opens its port before
    its database is loaded, and a client that connects in that window can be
    left hanging (the close fails inside the server)."""
    deadline = time.time() + timeout
    wait_port(port, timeout, proc)
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode} before serving on {port}")
        if four(port, "srvr").startswith("Zookeeper version:"):
            return
        time.sleep(0.1)
    raise AssertionError(f"server on port {port} not serving within {timeout}s")


def four(port, cmd, timeout=2.0):
    """A four-letter word's answer from 127.0.0.1:port, or '' if none."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(cmd.encode())
            out = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
        return out.decode(errors="replace")
    except OSError:
        return ""
