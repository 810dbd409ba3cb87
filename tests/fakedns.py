"""A small authoritative DNS server on loopback, standing in for the rest of the Internet's DNS."""

from __future__ import annotations

import selectors
import socket
import threading
from types import TracebackType
from typing import Self

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset
from dns.rdata import Rdata

_TTL = 300


class FakeDns:
    """Answers from records added with `add`, over UDP and TCP on 127.0.0.1 (ephemeral port).

    Unknown names get NXDOMAIN, known names asked for another type get an empty NOERROR, names
    passed to `servfail` get SERVFAIL. UDP answers over 512 bytes (or the query's EDNS size) are
    truncated so that clients retry over TCP. Serves from its own thread, so blocking code and
    asyncio tests can both query it. `queries` records every (name, type) asked, in order.
    `hold_answers` shows whether lookups run at once, without timing them.
    """

    def __init__(self) -> None:
        self.queries: list[tuple[str, str]] = []
        self._records: dict[dns.name.Name, dict[dns.rdatatype.RdataType, list[Rdata]]] = {}
        self._servfail: set[dns.name.Name] = set()
        self._lock = threading.Lock()
        # Until released, UDP queries wait in `_held` and TCP ones in their threads.
        self._released = threading.Event()
        self._released.set()
        self._hold_until = 0
        self._asked: set[tuple[str, str]] = set()
        self._held: list[tuple[dns.message.Message, tuple[str, int]]] = []
        self._stopping = threading.Event()
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def add(self, name: str, rdtype: str, *values: str | bytes | tuple[str, ...]) -> None:
        """Publish records in zone-file syntax; for TXT, a value over 255 bytes is split into
        several strings, a tuple gives the strings, bytes are published as they are."""
        kind = dns.rdatatype.from_text(rdtype)
        rdatas = [self._rdata(kind, value) for value in values]
        with self._lock:
            by_type = self._records.setdefault(dns.name.from_text(name), {})
            by_type.setdefault(kind, []).extend(rdatas)

    def remove(self, name: str, rdtype: str) -> None:
        """Withdraw every record of `rdtype` at `name` (a DNS change, for rebinding tests)."""
        with self._lock:
            self._records.get(dns.name.from_text(name), {}).pop(
                dns.rdatatype.from_text(rdtype), None
            )

    def servfail(self, name: str) -> None:
        """Answer SERVFAIL for every query about `name`."""
        with self._lock:
            self._servfail.add(dns.name.from_text(name))

    def hold_answers(self, until_asked: int) -> None:
        """Answer nothing until `until_asked` different (name, type) questions have come in, then
        everything: lookups made one after another would each wait for the next, and time out."""
        with self._lock:
            self._hold_until = until_asked
            self._asked.clear()
            self._released.clear()

    @property
    def address(self) -> str:
        assert self._udp is not None, "FakeDns is not started"
        return f"127.0.0.1:{self._udp.getsockname()[1]}"

    def start(self) -> None:
        self._udp, self._tcp = _bind_udp_and_tcp()
        self._thread = threading.Thread(target=self._serve, name="fakedns", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        for sock in (self._udp, self._tcp):
            if sock is not None:
                sock.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @staticmethod
    def _rdata(kind: dns.rdatatype.RdataType, value: str | bytes | tuple[str, ...]) -> Rdata:
        if kind == dns.rdatatype.TXT:
            if isinstance(value, tuple):
                strings = [part.encode() for part in value]
            else:
                data = value if isinstance(value, bytes) else value.encode()
                strings = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
            return dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, kind, strings)
        assert isinstance(value, str)
        return dns.rdata.from_text(
            dns.rdataclass.IN, kind, value, origin=dns.name.root, relativize=False
        )

    def _serve(self) -> None:
        assert self._udp is not None and self._tcp is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._udp, selectors.EVENT_READ)
            selector.register(self._tcp, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select(timeout=0.05):
                    if key.fileobj is self._udp:
                        self._answer_udp()
                    else:
                        conn, _ = self._tcp.accept()
                        threading.Thread(target=self._answer_tcp, args=(conn,), daemon=True).start()

    def _answer_udp(self) -> None:
        assert self._udp is not None
        wire, peer = self._udp.recvfrom(65535)
        query = self._parse(wire)
        if query is None:
            return
        if not self._admit(query):
            self._held.append((query, peer))
            return
        held, self._held = self._held, []
        for waiting, waiting_peer in [*held, (query, peer)]:
            limit = waiting.payload if waiting.edns >= 0 else 512
            reply = self._respond(waiting).to_wire(max_size=limit, prefer_truncation=True)
            self._udp.sendto(reply, waiting_peer)

    def _answer_tcp(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            try:
                while header := _recv_exactly(conn, 2):
                    query = self._parse(_recv_exactly(conn, int.from_bytes(header, "big")))
                    if query is None:
                        return
                    if not self._admit(query):
                        while not self._released.wait(0.05):
                            if self._stopping.is_set():
                                return
                    conn.sendall(self._respond(query).to_wire(prepend_length=True))
            except OSError:
                return

    @staticmethod
    def _parse(wire: bytes) -> dns.message.Message | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        return query if len(query.question) == 1 else None

    def _admit(self, query: dns.message.Message) -> bool:
        """Whether answers may go out now; counts the question towards `hold_answers`."""
        question = query.question[0]
        with self._lock:
            if not self._released.is_set():
                self._asked.add((question.name.to_text(), dns.rdatatype.to_text(question.rdtype)))
                if len(self._asked) >= self._hold_until:
                    self._released.set()
            return self._released.is_set()

    def _respond(self, query: dns.message.Message) -> dns.message.Message:
        question = query.question[0]
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        with self._lock:
            self.queries.append(
                (question.name.to_text(omit_final_dot=True), dns.rdatatype.to_text(question.rdtype))
            )
            if question.name in self._servfail:
                response.set_rcode(dns.rcode.SERVFAIL)
                return response
            by_type = self._records.get(question.name)
            rdatas = by_type.get(question.rdtype) if by_type is not None else None
        if rdatas:
            response.answer.append(dns.rrset.from_rdata_list(question.name, _TTL, rdatas))
        elif by_type is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response


def _bind_udp_and_tcp() -> tuple[socket.socket, socket.socket]:
    """A UDP and a listening TCP socket on the same free loopback port."""
    for _ in range(20):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.bind(("127.0.0.1", udp.getsockname()[1]))
        except OSError:
            udp.close()
            tcp.close()
            continue
        tcp.listen(16)
        return udp, tcp
    raise OSError("no loopback port free for both UDP and TCP")


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    """`size` bytes, or b"" if the peer closed the connection first."""
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return b""
        data += chunk
    return data
