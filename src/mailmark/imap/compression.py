"""COMPRESS=DEFLATE (RFC 4978): raw deflate (RFC 1951, no zlib header) both ways once the tagged
OK is sent, beneath the command reader and above TLS.

Reading: a pump takes the compressed octets off the connection's stream and feeds what they
inflate to into a new stream the command reader then reads. Memory stays bounded whatever the
compression ratio (a "deflate bomb"): the pump inflates at most STREAM_LIMIT octets at a time
(zlib's max_length) and waits while the inflated stream holds more than twice that unread, so
the line and literal limits of imap/reader.py still decide what is kept, as without compression.

Writing: responses are deflated as they are queued and a sync flush (RFC 4978 §4: Z_SYNC_FLUSH
after each response burst) ends each flush, so the client can inflate everything it was sent.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import zlib

from mailmark.imap.reader import STREAM_LIMIT

log = logging.getLogger(__name__)

# RFC 4978 §3: raw deflate (RFC 1951, no zlib header); a client may use the full 32 KiB window.
_RAW_DEFLATE = -15


class CompressionError(ConnectionError):
    """The client's compressed stream cannot be inflated; the connection cannot go on."""


class _Gate(asyncio.ReadTransport):
    """Stands in for the inflated stream's transport: the stream pauses it when more than twice
    its limit is buffered and resumes it once it is read down to the limit; the pump waits on it."""

    def __init__(self) -> None:
        super().__init__()
        self.open = asyncio.Event()
        self.open.set()

    def pause_reading(self) -> None:
        self.open.clear()

    def resume_reading(self) -> None:
        self.open.set()

    def is_reading(self) -> bool:
        return self.open.is_set()


class Inflater:
    """The inflated side of a connection's input: `stream` is what commands are read from."""

    def __init__(self, compressed: asyncio.StreamReader) -> None:
        self.stream = asyncio.StreamReader(limit=STREAM_LIMIT)
        self._gate = _Gate()
        self.stream.set_transport(self._gate)
        self._compressed = compressed
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        inflater = zlib.decompressobj(_RAW_DEFLATE)
        try:
            while not inflater.eof:
                data = await self._compressed.read(STREAM_LIMIT)
                if not data:
                    break
                while True:
                    await self._gate.open.wait()
                    piece = inflater.decompress(data, STREAM_LIMIT)
                    data = inflater.unconsumed_tail
                    if piece:
                        self.stream.feed_data(piece)
                    # A full piece may leave output inside zlib even with no input left.
                    if not data and len(piece) < STREAM_LIMIT:
                        break
            # The end of the deflate stream (RFC 1951 BFINAL) ends the client's input too: RFC
            # 4978 has no way back to uncompressed data.
            self.stream.feed_eof()
        except zlib.error as error:
            log.info("invalid compressed IMAP input: %s", error)
            self.stream.set_exception(CompressionError(f"invalid compressed data: {error}"))
        except (ConnectionError, ssl.SSLError, OSError) as error:
            self.stream.set_exception(error)

    def close(self) -> None:
        self._task.cancel()


class Deflater:
    """Deflates what a session writes; `flush` returns what has to go out for the client to be
    able to inflate all of it."""

    def __init__(self) -> None:
        self._compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, _RAW_DEFLATE)

    def compress(self, data: bytes) -> bytes:
        return self._compressor.compress(data)

    def flush(self) -> bytes:
        return self._compressor.flush(zlib.Z_SYNC_FLUSH)
