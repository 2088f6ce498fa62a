"""Real engine servers the durable tests start themselves (no engine installed system-wide is needed)."""

from __future__ import annotations

import socket
import subprocess


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def reap(process: subprocess.Popen[bytes], deadline: float) -> None:
    """Wait up to ``deadline`` seconds for a server asked to stop; kill it if it is still there; reap it."""
    try:
        process.wait(timeout=deadline)
    except subprocess.TimeoutExpired:
        pass
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
