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
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"srvr")
                reply = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    reply += chunk
            if reply.startswith(b"Zookeeper version:"):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server on port {port} not serving within {timeout}s")
