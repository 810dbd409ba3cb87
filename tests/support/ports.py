"""Free loopback ports for servers started as subprocesses (no pytest: the benches import it).

A subprocess cannot be handed a socket bound to port 0, so `free_port` picks a free one: another
process could take it before the server binds it, but the kernel hands out ephemeral ports in turn
and the window is a few milliseconds.
"""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
