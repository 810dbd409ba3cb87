"""Who may open one more connection: the admission rule every listener (MX, submission, IMAP,
HTTP) applies when a client connects, and the process's file-descriptor budget they share.

Three bounds, checked in this order:
- per client address: `max_per_ip` open connections (the loopback addresses are exempt, for local
  tools, health checks and a reverse proxy in front of HTTP);
- per listener: `max_total` open connections;
- per process: the descriptor reserve. When the process is within `reserve` descriptors of its
  limit, a listener already holding its share of the descriptors refuses, so a flood on one
  protocol stops short of the limit and leaves the others (and the database, the blob store and
  outbound delivery) descriptors to work with.
"""

from __future__ import annotations

import logging
import resource
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger(__name__)

LOOPBACK = frozenset({"127.0.0.1", "::1"})
# MX, submission, submissions, IMAP, IMAPS and HTTP share the descriptors.
LISTENERS = 6


class Refusal(StrEnum):
    """Why a connection was refused; the text is for the log."""

    PER_IP = "too many connections from this address"
    TOTAL = "too many connections to this listener"
    DESCRIPTORS = "the process is close to its file-descriptor limit"


def raise_descriptor_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (the default soft limit, 1,024, is a few
    hundred idle clients) and return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY or soft >= hard:
        return soft if soft != resource.RLIM_INFINITY else hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as error:
        log.warning("cannot raise the file-descriptor limit from %d to %d: %s", soft, hard, error)
        return soft
    log.info("file-descriptor limit raised from %d to %d", soft, hard)
    return hard


@dataclass(frozen=True)
class DescriptorBudget:
    """The process's descriptor limit, the reserve kept free near it, and each listener's share."""

    limit: int
    reserve: int

    @classmethod
    def for_process(cls, reserve: int) -> DescriptorBudget:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        limit = soft if soft != resource.RLIM_INFINITY else 1 << 20
        return cls(limit=limit, reserve=min(reserve, limit - 1))

    @property
    def share(self) -> int:
        return max(1, (self.limit - self.reserve) // LISTENERS)

    def near_limit(self, descriptor: int) -> bool:
        # POSIX hands out the lowest free descriptor: a new socket numbered n means descriptors
        # 0..n-1 are all open, so its number is a lower bound of the count, at no cost.
        return descriptor >= self.limit - self.reserve


@dataclass
class _RefusalPeriod:
    start: float
    unlogged: int = 0  # refusals counted, not logged, since `start`


class RefusalLog:
    """Refused connections in the log, without a flood of connections flooding it.

    A client that reconnects the moment it is refused can be refused thousands of times a second;
    a line each cost the server more than refusing (and the disk its space). The first refusal of
    an address in each `period` is logged; later ones are counted, and the count is logged with
    the address's first refusal of a later period."""

    PERIOD = 60.0
    MAX_ADDRESSES = 4096

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._periods: dict[str, _RefusalPeriod] = {}

    def refused(self, protocol: str, ip: str, refusal: Refusal) -> None:
        now = self._clock()
        period = self._periods.get(ip)
        if period is not None and now - period.start < self.PERIOD:
            period.unlogged += 1
            return
        unlogged = period.unlogged if period is not None else 0
        if period is None and len(self._periods) >= self.MAX_ADDRESSES:
            self._forget_before(now - self.PERIOD)
        self._periods[ip] = _RefusalPeriod(now)
        if unlogged:
            log.warning(
                "refusing %s connection from %s: %s (and %d more refused since the last such line)",
                protocol,
                ip,
                refusal,
                unlogged,
            )
        else:
            log.warning("refusing %s connection from %s: %s", protocol, ip, refusal)

    def _forget_before(self, moment: float) -> None:
        for ip in [ip for ip, period in self._periods.items() if period.start < moment]:
            del self._periods[ip]
        while len(self._periods) >= self.MAX_ADDRESSES:
            del self._periods[next(iter(self._periods))]


class ConnectionLimits:
    """One listener's open connections, counted per client address."""

    def __init__(self, *, max_per_ip: int, max_total: int, descriptors: DescriptorBudget) -> None:
        self.max_per_ip = max_per_ip
        self.max_total = max_total
        self.descriptors = descriptors
        self.refusals = RefusalLog()
        self._per_ip: Counter[str] = Counter()
        self.open = 0

    def admit(self, ip: str, descriptor: int) -> Refusal | None:
        """Count the connection in and return None, or return why it is refused (not counted)."""
        if ip not in LOOPBACK and self._per_ip[ip] >= self.max_per_ip:
            return Refusal.PER_IP
        if self.open >= self.max_total:
            return Refusal.TOTAL
        if self.descriptors.near_limit(descriptor) and self.open >= self.descriptors.share:
            return Refusal.DESCRIPTORS
        self._per_ip[ip] += 1
        self.open += 1
        return None

    def release(self, ip: str) -> None:
        self.open -= 1
        self._per_ip[ip] -= 1
        if self._per_ip[ip] <= 0:
            del self._per_ip[ip]


def descriptor_of(extra: object) -> int:
    """The descriptor number of a transport's socket (`get_extra_info("socket")`), -1 if none."""
    fileno = getattr(extra, "fileno", None)
    return int(fileno()) if callable(fileno) else -1


def listening_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to host:port (0 picks a free port), not yet listening, non-blocking:
    what every listener serves on, whether it binds itself or was handed one bound earlier."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
