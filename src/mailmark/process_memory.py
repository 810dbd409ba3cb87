"""How a long-running server process keeps its memory flat.

glibc's malloc serves a large block from an `mmap` of its own and unmaps it when freed, but only
until the first such block is freed: then it raises its threshold to that block's size (and its
trim threshold to twice that), and later blocks of that size come from the heap of the thread's
arena and stay there once freed. argon2id asks for 19 MiB per hash, on the password pool's
threads, so each of those threads would keep 19 MiB for good after its second hash (measured in
`bench/soak.py`: a +19 MiB step in RSS when the login cache first expired). A fixed threshold turns
that adjustment off: blocks from `LARGE_BLOCK` up are always mapped and always given back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

log = logging.getLogger(__name__)

# mallopt's parameter number for the mmap threshold, from glibc's <malloc.h>.
M_MMAP_THRESHOLD = -3
# Blocks this large or larger are mapped on their own: argon2's memory, a big message's bytes.
# Smaller ones (stream buffers, rows) stay in the heap, where reuse is cheap.
LARGE_BLOCK = 1024 * 1024


def give_large_blocks_back() -> bool:
    """Fix glibc's mmap threshold at `LARGE_BLOCK`; False where the C library has no such
    setting (musl, macOS), which manage large blocks their own way."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK))
    if not done:
        log.info("the C library keeps its own mmap threshold")
    return done


def freeze_startup_heap() -> None:
    """Put what is alive once the server is up (modules, the app, SQLAlchemy's tables and cached
    statements: most of the heap) beyond the garbage collector. Otherwise every full collection
    walks all of it (about 200,000 objects, 0.1-0.3 s), and falls on whichever request or IMAP
    command happens to allocate at that moment."""
    gc.collect()
    gc.freeze()
