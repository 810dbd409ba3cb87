"""An SNTP server on loopback (RFC 4330), standing in for the NTP servers a clock check asks."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

from mailmark.doctor import NTP_EPOCH_OFFSET


class SntpServer:
    """Answers SNTP queries on 127.0.0.1 with this machine's time plus `offset` seconds."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._sock.getsockname()[1]}"

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sock.setblocking(False)
        loop.add_reader(self._sock.fileno(), self._answer)

    def _answer(self) -> None:
        query, peer = self._sock.recvfrom(512)
        now = time.time() + self.offset
        stamp = struct.pack("!II", int(now) + NTP_EPOCH_OFFSET, int((now % 1) * 2**32))
        # LI 0, version 4, mode 4 (server), stratum 1; origin = the client's transmit time.
        header = bytes([0x24, 1, 0, 0]) + bytes(20)
        self._sock.sendto(header + query[40:48] + stamp + stamp, peer)

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.remove_reader(self._sock.fileno())
        self._sock.close()
