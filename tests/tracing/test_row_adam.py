"""RowAdam: each learner's row of a per-learner table is its own Adam, moved only when in the batch."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tracing.estimators.pyro_common import RowAdam  # noqa: E402


def _loss(table, rows, target):
    """A separable loss (a sum over the rows in the batch), as the absorb's ELBO is."""
    picked = torch.as_tensor(rows)
    return ((table[picked] - target[picked]) ** 2 * torch.arange(1.0, 4.0)).sum()


def test_rows_outside_the_batch_stay_as_they_were_and_each_row_is_its_own_adam():
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(6, 3, generator=generator)
    target = torch.randn(6, 3, generator=generator)
    table = torch.nn.Parameter(start.clone())
    optimiser = RowAdam([table], lr=0.1)
    batches = [np.array([0, 2]), np.array([1, 2, 5]), np.array([0]), np.array([2, 3]), np.array([0, 5])]
    for rows in batches:
        before = table.detach().clone()
        optimiser.zero_grad()
        _loss(table, rows, target).backward()
        optimiser.step(rows)
        outside = np.setdiff1d(np.arange(6), rows)
        assert torch.equal(table.detach()[outside], before[outside])  # not moved by momentum: bit for bit
        assert not torch.equal(table.detach()[rows], before[rows])
    # Row r's path is torch's Adam on row r's loss alone, over the steps whose batch held it.
    for row in range(6):
        alone = torch.nn.Parameter(start[row : row + 1].clone())
        reference = torch.optim.Adam([alone], lr=0.1)
        for rows in batches:
            if row in rows:
                reference.zero_grad()
                _loss(alone, np.array([0]), target[row : row + 1]).backward()
                reference.step()
        torch.testing.assert_close(table.detach()[row], alone.detach()[0], rtol=1e-6, atol=1e-7)
    assert torch.equal(table.detach()[4], start[4])  # never in a batch: never moved


def test_every_row_in_every_batch_is_torch_adam_on_the_table():
    generator = torch.Generator().manual_seed(1)
    start, target = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    mine, theirs = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    rows_optimiser, torch_optimiser = RowAdam([mine], lr=0.05), torch.optim.Adam([theirs], lr=0.05)
    every = np.arange(5)
    for _ in range(20):
        for table, optimiser in ((mine, rows_optimiser), (theirs, torch_optimiser)):
            optimiser.zero_grad()
            _loss(table, every, target).backward()
        rows_optimiser.step(every)
        torch_optimiser.step()
    torch.testing.assert_close(mine.detach(), theirs.detach(), rtol=1e-5, atol=1e-6)


def test_tables_of_different_learner_counts_are_refused():
    with pytest.raises(ValueError, match="one leading"):
        RowAdam([torch.nn.Parameter(torch.zeros(3, 2)), torch.nn.Parameter(torch.zeros(4, 2))], lr=0.1)
