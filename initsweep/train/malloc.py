"""glibc's allocator, told to keep freed memory for the next training step.

A stacked step allocates and frees the same tens of MB of activations and gradients every
time. By default glibc serves big blocks with ``mmap`` and hands them back with ``munmap``, so
every step faults its buffers in again page by page, and with one worker thread per shard each
``munmap`` also interrupts the other core to flush its TLB. With the settings below the buffers
stay mapped from one step to the next (docs/explanation/performance.md).
The cost is that the process keeps its peak heap until it exits, as tcmalloc or jemalloc would.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform

M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8  # from glibc's malloc.h


@functools.cache
def keep_freed_memory() -> bool:
    """Serve every block from one heap and never shrink it; ``False`` where libc is not glibc.

    One arena for all threads (a block freed by one shard's worker is reused by the other), no
    ``mmap`` for big blocks, and no trimming of the heap's top.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    settings = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1))
    return all(libc.mallopt(option, value) == 1 for option, value in settings)
