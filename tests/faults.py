"""Faults to test against, on loopback only."""

from __future__ import annotations

import socket
import threading


def hung_server() -> int:
    """A TCP port that accepts connections and never answers (a hung PostgreSQL or Redis)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            conn, _ = listener.accept()
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    return int(listener.getsockname()[1])
