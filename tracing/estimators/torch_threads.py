"""torch's CPU thread count for the span of a call: the one place an estimator sets it.

The count a fit uses comes from its ``threads`` hyper-parameter, whose default
(env TRACING_TORCH_THREADS) is read in ``hyper.default_threads``. torch's count is
process-wide, so it is restored after the call: a worker that runs several fits in
turn, or serves online updates between them, is left as it was found.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run torch's intra-op work on ``count`` CPU threads inside the block, restoring the previous count after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
