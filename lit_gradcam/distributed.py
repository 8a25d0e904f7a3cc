"""Coordination of the processes of a DDP job outside Lightning's hooks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch.distributed as dist


@contextlib.contextmanager
def local_rank_zero_first() -> Iterator[None]:
    """Run the block on local rank 0 of each node while the other ranks wait at a barrier.

    The waiting ranks then run it too and find what rank 0 left (a downloaded file, say) in
    place. If rank 0 fails, the others still pass the barrier and fail with their own message
    rather than hang.
    """
    if not (dist.is_available() and dist.is_initialized()):
        yield
        return
    leader = dist.get_node_local_rank(fallback_rank=dist.get_rank()) == 0
    if not leader:
        dist.barrier()
    try:
        yield
    finally:
        if leader:
            dist.barrier()
