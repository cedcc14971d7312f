"""Convolution-augmented Knowledge Tracing (Yang, Zhu & Lu, "Deep Knowledge Tracing
with Learning Curves", 2020), implemented from the paper's description
(``../shared/MODELS.md``), not from its code.

For row t (predicted from rows < t):

* every answer (skill, correct) is embedded in H² numbers (averaged over the
  item's skills, see ``deep``), read as an H x H frame;
* a first LSTM over the embedded answers gives the overall state h1 (size H²)
  before row t;
* the last ``recent`` (k) earlier rows of the window on the same concept as row
  t's item (its first skill) are stacked oldest to newest as a k x H x H volume,
  zero frames filling the front when there are fewer, and frame i is weighted by
  exp(S * (t_i - t)) with S = softplus(a learnt scalar) > 0, so older attempts
  count less; t_i and t are row positions (the DKVMN files have no clock);
* residual 3D convolution blocks (3x3x3, ``channels`` channels) read the volume,
  a 1x1x1 convolution maps it back to one channel and the mean over the k
  frames pools it to an H x H map, flattened to H²: the learning-curve feature c;
* two gates, sigmoid(Linear([c, h1])), weigh c and h1, and their weighted sum
  is the input of a second LSTM (size ``hidden``);
* a linear layer gives a logit per skill; row t reads its item's skills.

Departures from the paper, for a CPU budget: a single 1-channel stem and
``blocks`` residual blocks of ``channels`` channels (the paper's channel counts
are larger); the pooling is a mean over frames after a 1x1x1 channel reduction;
the concept of a multi-skill item is its first skill. ``plateau_decay`` (return to the
best weights with a smaller step after a worse validation epoch) is off by default, as
validation folds chose (``docs/choices.md``). Windowing, training and the artifact are in ``deep``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tracing.estimators import hyper
from tracing.estimators.deep import Batch, DeepEstimator, TracingNetwork, shifted


def recent_same_concept(concepts: np.ndarray, recent: int) -> np.ndarray:
    """For each row t of a window, the positions of the last ``recent`` earlier rows on its concept.

    ``concepts`` is (T,) (-1: none). Returns (T, recent) int64, oldest first and
    right-aligned, -1 where there are fewer earlier rows.
    """
    out = np.full((len(concepts), recent), -1, dtype=np.int64)
    seen: dict[int, list[int]] = {}
    for position, concept in enumerate(concepts.tolist()):
        if concept < 0:
            continue
        earlier = seen.setdefault(concept, [])
        if earlier:
            last = earlier[-recent:]
            out[position, recent - len(last) :] = last
        earlier.append(position)
    return out


class BandedConv3d(nn.Conv3d):
    """A 3x3x3 convolution (padding 1) computed as one 2D convolution over depth-folded channels.

    Same parameters and result as ``nn.Conv3d``; torch's CPU 3D convolution has no
    fast kernel for a few channels (its backward pass is ~10x slower than this).
    Output depth d reads input depths d-1..d+1, so the 2D weight is banded over depth.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 3, padding=1)

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        batch, channels, depth, height, width = volume.shape
        out_channels = self.weight.shape[0]
        banded = self.weight.new_zeros(out_channels, depth, channels, depth, 3, 3)
        for offset in range(3):
            target = torch.arange(max(0, 1 - offset), min(depth, depth + 1 - offset))
            banded[:, target, :, target + offset - 1] = self.weight[:, :, offset]
        assert self.bias is not None  # built with a bias (nn.Conv3d's default)
        folded = nn.functional.conv2d(
            volume.reshape(batch, channels * depth, height, width),
            banded.reshape(out_channels * depth, channels * depth, 3, 3),
            self.bias.repeat_interleave(depth),
            padding=1,
        )
        return folded.reshape(batch, out_channels, depth, height, width)


class ResidualBlock3d(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.first = BandedConv3d(channels, channels)
        self.second = BandedConv3d(channels, channels)

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        return torch.relu(volume + self.second(torch.relu(self.first(volume))))


class CAKTNetwork(TracingNetwork):
    def __init__(
        self, q_matrix: np.ndarray, *, frame: int, recent: int, channels: int, blocks: int, hidden: int, dropout: float
    ) -> None:
        super().__init__(q_matrix)
        size = frame * frame
        self.frame, self.recent = frame, recent
        self.embedding = nn.Embedding(2 * self.n_skills, size)
        self.overall = nn.LSTM(size, size, batch_first=True)
        self.decay = nn.Parameter(torch.zeros(()))
        self.convolution = nn.Sequential(
            BandedConv3d(1, channels),
            nn.ReLU(),
            *[ResidualBlock3d(channels) for _ in range(blocks)],
            nn.Conv3d(channels, 1, 1),
        )
        self.curve_gate = nn.Linear(2 * size, size)
        self.state_gate = nn.Linear(2 * size, size)
        self.fused = nn.LSTM(size, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, self.n_skills)

    def window_extras(self, items: np.ndarray) -> dict[str, np.ndarray]:
        return {"recent": recent_same_concept(self.primary[items], self.recent)}

    def _curve(
        self, answers: torch.Tensor, recent: torch.Tensor, now: torch.Tensor, real: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Learning-curve features (B, Q, H²) for Q positions per batch row.

        ``answers`` (B, T, H²) are the answer embeddings, ``recent`` (B, Q, k) the
        positions (into T; -1 none) of the concept's earlier rows, ``now`` (B, Q)
        the positions being predicted and ``real`` (B, Q), if given, marks the
        positions that are not padding.

        A position with no earlier row on its concept has an all-zero volume, whose
        feature is a constant of the weights: it is computed once and shared. Padding
        positions get that constant too; the LSTMs are causal, so padding (always at
        the end of a window) never reaches a real row. The convolution is most of
        CAKT's cost, and 15-18% of the training rows on the DKVMN splits are first
        rows on their concept.
        """
        batch, queries, recent_count = recent.shape
        size = answers.shape[-1]
        live = (recent >= 0).any(dim=-1)
        if real is not None:
            live = live & real
        empty: torch.Tensor = self.convolution(answers.new_zeros(1, 1, recent_count, self.frame, self.frame))
        curve = empty.mean(dim=2).reshape(1, 1, size).expand(batch, queries, size)
        if not bool(live.any()):
            return curve
        rows, positions = live.nonzero(as_tuple=True)
        earlier = recent[rows, positions]  # (N, k)
        frames = answers[rows.unsqueeze(-1), earlier.clamp(min=0)]  # (N, k, H²)
        age = (now[rows, positions].unsqueeze(-1) - earlier).to(answers.dtype)  # (N, k) rows between then and now
        weight = torch.exp(-nn.functional.softplus(self.decay) * age) * (earlier >= 0)
        volume = (frames * weight.unsqueeze(-1)).reshape(-1, 1, recent_count, self.frame, self.frame)
        features = self.convolution(volume).mean(dim=2).reshape(-1, size)  # (N, H²)
        return curve.index_put((rows, positions), features)

    def _fuse(self, curve: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        both = torch.cat([curve, state], dim=-1)
        return torch.sigmoid(self.curve_gate(both)) * curve + torch.sigmoid(self.state_gate(both)) * state

    def forward(self, batch: Batch) -> torch.Tensor:
        """(B, T) logits: row t from the state before it and its concept's recent rows."""
        item = batch["item"]
        answers = self.interaction_embedding(self.embedding, item, batch["correct"])  # (B, T, H²)
        overall = shifted(self.overall(answers)[0])  # (B, T, H²) before each row
        now = torch.arange(item.shape[1], device=item.device).expand(item.shape[0], -1)
        curve = self._curve(answers, batch["recent"], now, batch["mask"])
        fused = self.fused(self._fuse(curve, overall))[0]  # (B, T, hidden)
        return self.read_skills(self.output(self.dropout(fused)), item)

    def predict_last(self, batch: Batch, queries: torch.Tensor) -> torch.Tensor:
        """(M,) logits of a next row after the (1, T) history, for each query item."""
        length = int(batch["mask"].sum())
        size = self.frame * self.frame
        item = batch["item"][:, :length]
        answers = self.interaction_embedding(self.embedding, item, batch["correct"][:, :length])
        if length:
            states, _ = self.overall(answers)
            overall_last = states[:, -1]  # (1, H²) after all rows
            now = torch.arange(length).unsqueeze(0)
            curve = self._curve(answers, batch["recent"][:, :length], now)
            _, carry = self.fused(self._fuse(curve, shifted(states)))
        else:
            overall_last = torch.zeros(1, size)
            answers = torch.zeros(1, 0, size)
            carry = None
        concepts = self.primary[queries.numpy()]
        history = self.primary[item[0].numpy()]
        recent = (
            np.stack([recent_same_concept(np.append(history, concept), self.recent)[-1] for concept in concepts])
            if len(concepts)
            else np.zeros((0, self.recent), np.int64)
        )
        curve = self._curve(
            answers.expand(len(queries), -1, -1) if length else torch.zeros(len(queries), 0, size),
            torch.from_numpy(recent).unsqueeze(1),
            torch.full((len(queries), 1), length),
        )
        fused_input = self._fuse(curve, overall_last.expand(len(queries), -1).unsqueeze(1))  # (M, 1, H²)
        if carry is not None:
            carry = tuple(part.expand(-1, len(queries), -1).contiguous() for part in carry)
        output, _ = self.fused(fused_input, carry)
        return self.read_skills(self.output(self.dropout(output[:, 0])), queries)


class CAKT(DeepEstimator):
    """CAKT. Keywords: ``frame`` (H), ``recent`` (k), ``channels``, ``blocks``, ``hidden`` and the common ones."""

    kind = "cakt"
    PARAMS = hyper.CAKT

    def build_network(self, q_matrix: np.ndarray) -> CAKTNetwork:
        config = self.config
        return CAKTNetwork(
            q_matrix,
            frame=config["frame"],
            recent=config["recent"],
            channels=config["channels"],
            blocks=config["blocks"],
            hidden=config["hidden"],
            dropout=config["dropout"],
        )
