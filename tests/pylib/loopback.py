"""Helpers the Python end-to-end tests share: free loopback ports and
waiting, bounded, for a server process to open its port."""

import socket
import time


def free_port():
    """A port free on 127.0.0.1 right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


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
