"""PSI-KT in pyro: continuous-time knowledge with forgetting, learner traits and a learned
prerequisite graph (after Zhou et al., ICLR 2024; implemented from the paper's equations).

Generative model, for learner l, skills k = 1..K, items j, the learner's rows n at times t_n:

    s_l = (log alpha_l, mu_l, log sigma_l, logit gamma_l, log lambda_l)
        ~ Normal(population loc, population scale)
    A_ik ~ Bernoulli(rho), relaxed as LogitRelaxedBernoulli(temperature)  (i is a prerequisite of k)
    z_0^k ~ Normal(mu_l, sigma_l^2 / (2 alpha_l))                          (the stationary spread)
    between rows, dt = (t_n - t_{n-1}) / unit, d = exp(-alpha_l dt):
        z^k <- Normal(d z^k + (1 - d) mu_l,  sigma_l^2 (1 - d^2) / (2 alpha_l))
    answer to item j with skills S_j:
        f_j(z) = w * mean_{k in S_j} z^k + c_j
        y_n ~ Bernoulli(Phi(f_j(z)))      (the probit Phi stands in for the logistic sigmoid,
                                           sigmoid(x) ~ Phi(0.59 x), so the filter is exact)
    practice: after the answer, for k in S_j, z^k moves a fraction
        g_lk = (1 - (1 - eta_k)^lambda_l) * prod_i (1 - gamma_l (1 - r^i))^A_ik
    of the way to a ceiling c_k, r^i = P(right on a typical item of skill i) (the
    mastery), and its variance grows by tau^2 (learning within a session, where the OU
    volatility over seconds is negligible).

So with no practice knowledge drifts back to the learner's long-run level mu_l:
forgetting, faster for larger alpha_l. The graph shapes learning, as the paper
intends (prerequisites' knowledge conditions the dependent skill's dynamics): the
product is a noisy AND, each prerequisite i of k blocking a practice step on k with
probability gamma_l (1 - r^i), so practice teaches k little while its prerequisites
are unknown. lambda_l is the learner's learning speed.

Two departures from the paper, both so that an edge's direction can be learned. The
paper's drift term b^k = gamma sum_i A_ik z^i / K (z^k pulled towards its prerequisites'
level) is left out: it explains an edge k -> i as well as i -> k. The learning-speed
trait lambda_l is added: without it, knowing the skill taught just before k stands in
for "this learner learns fast". With the graph acting through learning only, i -> k
makes practice on k fruitless while i is unknown and learning i never depends on k, so
the likelihood separates the two directions wherever learners practise a skill before
knowing all its prerequisites (tracing.simulate's ``"course"`` policy).

``dynamics="ou"``: the paper's model, from its equations (../shared/MODELS.md), beside the default
above (``"jump"``). Between answers each skill's knowledge is an OU process with the learner's
mean reversion alpha_l and volatility sigma_l, drawn by its exact discretisation, its long-run
level raised by the prerequisites' knowledge as the paper writes it:

    z^k <- Normal(d z^k + (1 - d)(mu_l + b^k),  sigma_l^2 (1 - d^2) / (2 alpha_l)),
    b^k = gamma_l sum_i A_ik z^i / K

and there is no practice step: answers move z only through the observation (the filter's
update), as in the paper's state-space model. Its traits are the paper's four (alpha, mu, sigma,
gamma); the raw vector keeps a fifth column, unused and left at its prior, so that both variants
share one artifact layout, encoder and absorb path. The emission is the probit above in both
(the paper's logistic link up to a rescaling of the learned w).

A limit: the filter keeps one belief per skill, so "k known implies i known" never
reaches i's belief, and an edge from a grandparent, or from a skill taught just before
k whose knowledge implies one of k's prerequisites, can add likelihood and be drawn.
``learned_prerequisites()`` reports the graph transitively reduced
(:func:`drop_implied_edges`), as prerequisite maps are drawn and as tracing.simulate
plants them; this is what a fit stores for the course (``reduced=False`` gives every
edge over the threshold).

Inference. The knowledge z is integrated out by an assumed-density (Kalman-style)
filter with a diagonal Gaussian per learner: the drift step above is linear in z;
the answer step matches the first two moments of the probit-tilted Gaussian. The
filter's predictive probabilities give log p(answers | s_l, A), and SVI maximises

    ELBO = E_q[sum_l log p(y_l | s_l, A)] - KL(q(s_l) || p(s_l)) - KL(q(A) || p(A))

over minibatches of learners, with q(s_l) Normal per learner, q(A_ik) relaxed
Bernoulli(pi_ik) (Gumbel-softmax samples, so edges get reparameterised gradients)
and course-level point estimates of c_j, w, eta_k, c_k, tau and the population prior. The
mixture prior of the paper and the slow random walk of traits within a period are
left out: traits are constant inside a period, and across periods :meth:`PsiKT.absorb`
uses the previous posterior as the next prior (continual learning). Skills' knowledge
is independent a priori and in the filter (diagonal); the graph couples them through
learning only.

Prediction and online update run the same filter in float64. A learner the model
has not seen starts from the population's trait means; a learner fitted or absorbed
uses its own posterior trait means (``predict_proba`` and ``final_states`` treat each
sequence as that learner's history from the start; :meth:`PsiKT.learner_state` gives
the state at the end of what was absorbed). Edge probabilities pi_ik are used as the
expected graph at prediction time.

Time. ``unit_seconds`` (default one day) is the time unit of alpha. Untimed data
(``Dataset.has_time`` False) stores step numbers as timestamps; there the unit is one
answer, so dt counts answers in between.

Lab notes (the forms tried and dropped, the starting values, the figures on the
bench's planted graphs): docs/psikt-notes.md.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Self

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.distributions.torch_distribution import TorchDistributionMixin
from pyro.infer import TraceMeanField_ELBO
from pyro.nn import PyroModule
from torch.distributions import constraints
from torch.distributions.kl import register_kl
from torch.distributions.relaxed_bernoulli import LogitRelaxedBernoulli as _TorchLogitRelaxedBernoulli
from torch.nn import functional as F

from tracing.data import Dataset
from tracing.estimators import hyper
from tracing.estimators.base import Estimator, LearnerState, Progress, no_progress
from tracing.estimators.pyro_common import (
    Padded,
    batch_rows,
    fitting_context,
    load_artifact,
    pad_learners,
    pyro_param,
    run_svi,
    save_artifact,
    time_unit,
)

TRAIT_NAMES = ("forgetting_rate", "long_run_level", "volatility", "prerequisite_gain", "learning_speed")
N_TRAITS = len(TRAIT_NAMES)
ENCODER_PREFIX = "encoder."  # the trait encoder's weights, among a fit's arrays
_VARIANCE_FLOOR = 1e-6
ABSORB_LEARNING_RATE = 0.5  # each learner's own Adam (RowAdam), with hyper's absorb_steps of 2 passes
# Learners per SVI step of an absorb with each learner's own Adam: autograd keeps some thirty (B, K)
# tensors per filter step, so 1,024 learners over 150 rows and 100 skills hold about 1 GB.
ABSORB_BATCH = 1024
# What absorb optimises with, saved in each artifact: one saved before it (torch's Adam over the whole
# table, ``absorb_steps`` 10 at 0.1) has none, and its stored default of 10 gives way to today's.
ABSORB_OPTIMISER = "own_adam"
_OLD_ABSORB_STEPS = 10
_END_CHUNK = 2048  # learners per end-state filter call (its padded arrays are chunk x longest history)


# (raw trait index, what a high value means, what a low one means, what "about usual" means, what
# "not sure yet" is about) for the traits a teacher can act on; the others (volatility, prerequisite
# gain) stay in the numbers.
_TRAIT_PHRASES = (
    (4, "learns fast", "learns slowly", "learns at about the usual pace", "how fast they learn"),
    (0, "forgets quickly", "forgets slowly", "forgets at about the usual rate", "how fast they forget"),
    (1, "keeps a high level in the long run", "falls back to a low level in the long run", "", ""),
)


def trait_words(
    loc: np.ndarray,
    scale: np.ndarray,
    population_loc: np.ndarray,
    population_scale: np.ndarray,
    *,
    learning_speed: bool = True,
) -> list[str]:
    """The traits a teacher can act on, in words, each with how sure the model is.

    A trait is said to be high (low) when the posterior puts at least 70% on it lying above (below)
    the population's typical value: "likely" from 70%, "very likely" from 90%, with the percentage.
    Otherwise: "about usual" where the posterior is narrow (sd under half the population's spread),
    else "not sure yet" (few answers). Raw traits are monotone in the natural ones (log alpha,
    log lambda, mu), so the comparison in raw units says the same. ``learning_speed`` False: no
    words on it (``dynamics="ou"`` has no such trait).
    """
    words = []
    for index, high, low, usual, unknown in _TRAIT_PHRASES:
        if index == 4 and not learning_speed:
            continue
        sd = max(float(scale[index]), 1e-9)
        above = 0.5 * math.erfc(-(float(loc[index]) - float(population_loc[index])) / (sd * math.sqrt(2)))
        for share, phrase in ((above, high), (1 - above, low)):
            if share >= 0.7:
                sure = "very likely" if share >= 0.9 else "likely"
                words.append(f"{phrase} ({sure}: {round(100 * share)}%)")
                break
        else:
            if not usual:
                continue
            if sd < 0.5 * float(population_scale[index]):
                words.append(usual)
            else:
                words.append(f"not sure yet {unknown}")
    return words


class LogitRelaxedBernoulli(_TorchLogitRelaxedBernoulli, TorchDistributionMixin):
    """Relaxed Bernoulli in logit space: its density stays finite where the sigmoid saturates."""

    has_rsample = True  # torch samples it by reparameterisation but leaves the flag unset


@register_kl(LogitRelaxedBernoulli, LogitRelaxedBernoulli)  # type: ignore[untyped-decorator]  # torch's is unannotated
def _kl_relaxed_bernoulli(posterior: LogitRelaxedBernoulli, prior: LogitRelaxedBernoulli) -> torch.Tensor:
    # The KL of the Bernoulli laws the relaxations stand for (their zero-temperature limit):
    # closed form and noiseless, where a Monte Carlo estimate over K^2 edges swamps the ELBO.
    q, p = posterior.logits, prior.logits
    return torch.sigmoid(q) * (F.logsigmoid(q) - F.logsigmoid(p)) + torch.sigmoid(-q) * (
        F.logsigmoid(-q) - F.logsigmoid(-p)
    )


def drop_implied_edges(probability: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """``chosen`` (K, K) bool less each edge i -> k that a path i -> ... -> k of chosen edges,
    each more probable than ``probability[i, k]``, already implies.

    Why: the filter keeps one belief per skill, so a grandparent (a second witness of the
    parent's state) can add likelihood as a direct edge; a map in transitively reduced form
    states the same order without it. Only stronger paths count, so the result does not
    depend on the order edges are visited, and a weak path never removes a strong edge.
    """
    chosen = np.asarray(chosen, dtype=bool)
    kept = chosen.copy()
    for source, target in zip(*np.nonzero(chosen)):
        stronger = chosen & (probability > probability[source, target])
        reached = np.zeros(len(chosen), dtype=bool)
        frontier = [int(source)]
        while frontier:  # depth-first search from the source over stronger edges only
            for child in np.flatnonzero(stronger[frontier.pop()] & ~reached):
                reached[child] = True
                frontier.append(int(child))
        kept[source, target] = not reached[target]
    return kept


def known_matrix(skill_ids: tuple[str, ...], edges: tuple[tuple[str, str], ...]) -> np.ndarray | None:
    """(K, K) bool: the declared prerequisites among ``skill_ids`` (others and self-loops left out);
    None when none of them is among the skills."""
    index = {skill: position for position, skill in enumerate(skill_ids)}
    known = np.zeros((len(skill_ids), len(skill_ids)), dtype=bool)
    for source, target in edges:
        if source in index and target in index and source != target:
            known[index[source], index[target]] = True
    return known if known.any() else None


def edge_prior_matrix(
    known: np.ndarray | None, edge_prior: float, known_edge_prior: float, n_skills: int
) -> np.ndarray:
    """(K, K) prior probability of each edge: ``edge_prior``, and ``known_edge_prior`` where ``known``."""
    prior = np.full((n_skills, n_skills), edge_prior)
    if known is not None:
        prior[known] = max(known_edge_prior, edge_prior)
    return prior


def edge_logits_start(known: np.ndarray | None, n_skills: int) -> torch.Tensor:
    """Where q(A)'s logits start: edges unlikely (-2: 0.12), declared ones (``known`` (K, K) bool) likely
    (+2: 0.88). Both guides start here."""
    start = np.where(known, 2.0, -2.0) if known is not None else np.full((n_skills, n_skills), -2.0)
    return torch.as_tensor(start, dtype=torch.float32)


def trait_values(raw: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(alpha, mu, sigma, gamma, lambda), each raw.shape[:-1], from raw traits (..., 5)."""
    return raw[..., 0].exp(), raw[..., 1], raw[..., 2].exp(), torch.sigmoid(raw[..., 3]), raw[..., 4].exp()


def learner_gain(gain: torch.Tensor, speed: torch.Tensor) -> torch.Tensor:
    """1 - (1 - eta_k)^lambda_l, (B, K): a fast learner (lambda > 1) gains more per answer, in (0, 1)."""
    return -torch.expm1(speed * torch.log1p(-torch.clamp(gain, max=1 - 1e-6)))


def initial_knowledge(raw: torch.Tensor, n_skills: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance (B, K) of z before any answer: the stationary law at the learner's level."""
    alpha, mu, sigma, *_ = trait_values(raw)
    mean = mu[:, None].expand(-1, n_skills).clone()
    variance = (sigma**2 / (2 * alpha))[:, None].expand(-1, n_skills).clone()
    return mean, variance


def drift(
    mean: torch.Tensor,
    variance: torch.Tensor,
    raw: torch.Tensor,
    elapsed: torch.Tensor,
    graph: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The OU step over ``elapsed`` (B,) time units: mean and variance (B, K) of z afterwards.

    With ``graph`` (K, K) (``dynamics="ou"``), each skill's long-run level is raised by its
    prerequisites' knowledge as the paper writes it (:func:`_ou_drift`); without, it is mu_l."""
    alpha, mu, sigma, gamma, _ = trait_values(raw)
    decay = torch.exp(-alpha * elapsed)[:, None]
    stationary = (sigma**2 / (2 * alpha))[:, None]
    if graph is None:
        return _drift(mean, variance, decay, mu[:, None], stationary)
    return _ou_drift(mean, variance, decay, mu[:, None], stationary, gamma[:, None], graph)


def _drift(
    mean: torch.Tensor, variance: torch.Tensor, decay: torch.Tensor, level: torch.Tensor, stationary: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    return decay * mean + (1 - decay) * level, decay**2 * variance + stationary * (1 - decay**2)


def _ou_drift(
    mean: torch.Tensor,
    variance: torch.Tensor,
    decay: torch.Tensor,
    level: torch.Tensor,
    stationary: torch.Tensor,
    coupling: torch.Tensor,
    graph: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's transition, exact given z before it: z^k ~ Normal(d z^k + (1 - d)(mu + b^k),
    sigma^2 (1 - d^2) / (2 alpha)) with b^k = gamma sum_i A_ik z^i / K, d = ``decay`` (B, 1).

    Over the filter's diagonal Gaussian belief the mean is exact (b is linear in z) and the
    variance adds b's own, (1 - d)^2 (gamma / K)^2 sum_i A_ik^2 var z^i; the cross term of z^k
    with b^k vanishes because A_kk = 0. ``coupling`` (B, 1) is gamma, ``graph`` (K, K) A."""
    pull = coupling / graph.shape[0]
    boost = pull * (mean @ graph)
    boost_variance = pull**2 * (variance @ (graph * graph))
    new_mean = decay * mean + (1 - decay) * (level + boost)
    new_variance = decay**2 * variance + (1 - decay) ** 2 * boost_variance + stationary * (1 - decay**2)
    return new_mean, new_variance


def answer_location(
    mean: torch.Tensor, variance: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probit location and 1/sqrt(1 + var f): P(correct) = Phi(location); all (B,).

    ``weight`` (B, K) is the emission row of the answered item, ``bias`` (B,) its offset.
    """
    centre = (weight * mean).sum(-1) + bias
    spread = (weight * weight * variance).sum(-1)
    shrink = torch.rsqrt(1 + spread)
    return centre * shrink, shrink


def observe(
    mean: torch.Tensor,
    variance: torch.Tensor,
    weight: torch.Tensor,
    location: torch.Tensor,
    shrink: torch.Tensor,
    correct: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Moment-matched posterior (B, K) of z after the answer ``correct`` (B,), >= 0.5 counts as right.

    A zero ``weight`` row leaves z as it was (how padding is skipped).
    """
    sign = torch.where(correct >= 0.5, 1.0, -1.0).to(mean.dtype)
    tilted = sign * location
    # Inverse Mills ratio phi(t)/Phi(t) in log space: stable far in the tails.
    ratio = torch.exp(-0.5 * tilted**2 - 0.5 * math.log(2 * math.pi) - torch.special.log_ndtr(tilted))
    gradient = (sign * shrink * ratio)[:, None]
    curvature = (shrink**2 * ratio * (tilted + ratio))[:, None]
    moved = variance * weight
    new_mean = mean + moved * gradient
    new_variance = torch.clamp(variance - moved**2 * curvature, min=_VARIANCE_FLOOR)
    return new_mean, new_variance


def prerequisite_gate(readiness: torch.Tensor, coupling: torch.Tensor, graph: torch.Tensor) -> torch.Tensor:
    """The share of practice that teaches each skill, (B, K): prod_i (1 - gamma (1 - r_i))^A_ik.

    A noisy AND over the prerequisites: each prerequisite i of k (edge weight A_ik in
    ``graph`` (K, K)) blocks learning k with probability gamma (1 - r_i), r_i =
    ``readiness`` (B, K); ``coupling`` (B, 1) is gamma. The power form is exact for a
    0/1 graph and keeps the cost a (B, K) x (K, K) product on relaxed edge weights.
    """
    return torch.exp(torch.log1p(-coupling * (1 - readiness)) @ graph)


def practise(
    mean: torch.Tensor,
    variance: torch.Tensor,
    gain: torch.Tensor,
    practised: torch.Tensor,
    ceiling: torch.Tensor,
    noise: torch.Tensor,
    gate: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Practice moves knowledge: z^k moves a fraction of the way to ``ceiling`` (K,).

    The fraction is eta_k (``gain``, (B, K)) times the prerequisite ``gate`` (B, K) (see
    :func:`prerequisite_gate`), so practice teaches a skill little while its
    prerequisites are unknown. The move is bounded, so long drills cannot push z to
    certainty; ``noise`` (a variance) on the ``practised`` (B, K) skills keeps the filter
    learning within a session, where the OU volatility over seconds is negligible.
    """
    step = gain * gate
    return mean + step * (ceiling - mean), (1 - step) ** 2 * variance + noise * practised


def readiness_of(
    mean: torch.Tensor, variance: torch.Tensor, scale: torch.Tensor, typical: torch.Tensor
) -> torch.Tensor:
    """P(correct) on an item of average difficulty for each skill alone, (B, K): the mastery."""
    readiness: torch.Tensor = torch.special.ndtr((scale * mean + typical) * torch.rsqrt(1 + scale**2 * variance))
    return readiness


def _filter_step(
    course: dict[str, torch.Tensor],
    terms: dict[str, torch.Tensor],
    mean: torch.Tensor,
    variance: torch.Tensor,
    decay: torch.Tensor,
    answered: torch.Tensor,
    bias: torch.Tensor,
    correct: torch.Tensor,
    dynamics: str,
    on: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One answer of the filter for B learners, what :func:`run_filter` and :func:`prefix_filter` both
    step by: drift over the gap (``decay`` (B, 1)), the answer to item ``answered`` (B,) (``bias`` (B,)
    its offset) observed as ``correct`` (B,), then practice (``dynamics`` "jump"). ``terms`` holds each
    learner's ``level``, ``stationary``, ``coupling`` and ``speed`` (B, 1); ``on`` (B, 1) is 0 on a
    padded step (zero emission weight and gain: the state passes unchanged but for the variance floor
    of :func:`observe`). Returns the answer's probit location (B,) (P(correct) = Phi(location)) and
    the mean and variance (B, K) after it."""
    weight = course["weight"][answered] if on is None else course["weight"][answered] * on
    level, stationary, coupling = terms["level"], terms["stationary"], terms["coupling"]
    if dynamics == "ou":
        mean, variance = _ou_drift(mean, variance, decay, level, stationary, coupling, course["graph"])
    else:
        mean, variance = _drift(mean, variance, decay, level, stationary)
    location, shrink = answer_location(mean, variance, weight, bias)
    mean, variance = observe(mean, variance, weight, location, shrink, correct)
    if dynamics == "ou":
        return location, mean, variance
    readiness = readiness_of(mean, variance, course["scale"], course["typical"])
    gain, practised = course["gain"][answered], course["practised"][answered]
    if on is not None:
        gain, practised = gain * on, practised * on
    mean, variance = practise(
        mean,
        variance,
        learner_gain(gain, terms["speed"]),
        practised,
        course["ceiling"],
        course["noise"],
        prerequisite_gate(readiness, coupling, course["graph"]),
    )
    return location, mean, variance


def run_filter(
    course: dict[str, torch.Tensor],
    raw: torch.Tensor,
    batch: dict[str, torch.Tensor],
    start: tuple[torch.Tensor, torch.Tensor] | None = None,
    dynamics: str = "jump",
) -> tuple[torch.Tensor, ...]:
    """Filter a padded batch: (log-likelihood (B,), P(correct) (B, T), final mean, final variance).

    ``dynamics`` "jump": the OU drift towards mu_l, and practice after each answer (gated by
    the graph); "ou": the paper's OU drift, its level raised by the prerequisites'
    knowledge, and no practice step (answers move z only through the observation).

    ``course`` holds ``weight`` (J, K), ``bias`` (J,), ``gain`` (J, K) (eta_k on the item's
    skills) and ``graph`` (K, K); ``raw`` (B, 5) the traits. ``start`` resumes from a
    given (mean, variance) instead of the initial law. Padding has zero elapsed time, zero
    emission weight and zero gain, so the filter passes over it unchanged. The item's rows
    of the course tables are gathered step by step, so without autograd (prediction)
    memory grows as B x (T + K), never B x T x K (gigabytes on long sequences over many
    skills).
    """
    item, correct, elapsed, mask = batch["item"], batch["correct"], batch["elapsed"], batch["mask"]
    n_skills = course["weight"].shape[1]
    mean, variance = start if start is not None else initial_knowledge(raw, n_skills)
    alpha, mu, sigma, gamma, speed = trait_values(raw)
    live = mask.to(mean.dtype)
    decay = torch.exp(-alpha[:, None] * elapsed)  # (B, T)
    bias = course["bias"][item]
    terms = {"level": mu[:, None], "coupling": gamma[:, None], "speed": speed[:, None]}
    terms["stationary"] = (sigma**2 / (2 * alpha))[:, None]
    locations = []
    for step in range(item.shape[1]):
        location, mean, variance = _filter_step(
            course,
            terms,
            mean,
            variance,
            decay[:, step, None],
            item[:, step],
            bias[:, step],
            correct[:, step],
            dynamics,
            on=live[:, step, None],
        )
        locations.append(location)
    location = torch.stack(locations, dim=1)
    log_likelihood = (
        live * (correct * torch.special.log_ndtr(location) + (1 - correct) * torch.special.log_ndtr(-location))
    ).sum(1)
    return log_likelihood, torch.special.ndtr(location), mean, variance


def prefix_filter(
    course: dict[str, torch.Tensor],
    raw: torch.Tensor,
    batch: dict[str, torch.Tensor],
    start: tuple[torch.Tensor, torch.Tensor] | None = None,
    dynamics: str = "jump",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`run_filter`'s log-likelihood (B,) and final state (mean, variance (B, K)) of a padded
    batch, stepping only the learners whose history is not over.

    Why: :func:`run_filter` steps every learner of a batch to the longest one's end, so its cost
    is B x the longest history, and each of its steps is a few dozen small tensor operations whose
    fixed cost outweighs their arithmetic on a minibatch of 128. Here learners go longest first and each
    step updates only those still in their history (a prefix of them), so the work is the rows
    there are, on as many learners at once as the batch holds; a learner whose history is over
    leaves its state aside (no in-place writes, so autograd runs through it). A learner's state
    after its last row is :func:`run_filter`'s but for the variance floor that :func:`observe`
    applies on padded steps (:func:`final_knowledge` applies it); its log-likelihood is the same
    sum over its rows. The absorb's SVI and the end states run on it.
    """
    lengths = batch["mask"].sum(1)
    order = torch.argsort(-lengths, stable=True)
    back = torch.argsort(order)
    mean, variance = start if start is not None else initial_knowledge(raw, course["weight"].shape[1])
    mean, variance, raw = mean[order], variance[order], raw[order]
    # Step-major (T, B) copies, so that each step's prefix of learners is contiguous.
    item = batch["item"][order].T.contiguous()
    correct = batch["correct"][order].T.contiguous().to(mean.dtype)
    alpha, mu, sigma, gamma, speed = trait_values(raw)
    decay = torch.exp(-alpha[None, :] * batch["elapsed"][order].T.to(mean.dtype))  # (T, B)
    terms = {"level": mu[:, None], "coupling": gamma[:, None], "speed": speed[:, None]}
    terms["stationary"] = (sigma**2 / (2 * alpha))[:, None]
    # Learners still in their history at each step: a prefix, since they are sorted longest first.
    active = lengths[order]
    width = int(active[0]) if len(active) else 0
    counts = (active[None, :] > torch.arange(width)[:, None]).sum(1).tolist()
    finished_mean: list[torch.Tensor] = []
    finished_variance: list[torch.Tensor] = []
    locations: list[torch.Tensor] = []
    previous = len(active)
    for step, count in enumerate(counts):
        if count < previous:  # learners count..previous - 1 have had their last row
            finished_mean.append(mean[count:])
            finished_variance.append(variance[count:])
            mean, variance = mean[:count], variance[:count]
            terms = {name: value[:count] for name, value in terms.items()}
            previous = count
        answered = item[step, :count]
        location, mean, variance = _filter_step(
            course,
            terms,
            mean,
            variance,
            decay[step, :count, None],
            answered,
            course["bias"][answered],
            correct[step, :count],
            dynamics,
        )
        locations.append(location)
    finished_mean.append(mean)
    finished_variance.append(variance)
    mean = torch.cat(finished_mean[::-1])[back]
    variance = torch.cat(finished_variance[::-1])[back]
    real = batch["mask"][order].T  # (T, B): the rows, in the order their locations were made
    which = torch.nonzero(real)[:, 1]  # the (sorted) learner of each row, step-major
    location = torch.cat(locations) if locations else torch.zeros(0, dtype=mean.dtype)
    right = correct[real]
    terms_of_rows = right * torch.special.log_ndtr(location) + (1 - right) * torch.special.log_ndtr(-location)
    log_likelihood = torch.zeros(len(order), dtype=mean.dtype).index_add(0, which, terms_of_rows)
    return log_likelihood[back], mean, variance


def final_knowledge(
    course: dict[str, torch.Tensor],
    raw: torch.Tensor,
    padded: Padded,
    start: tuple[torch.Tensor, torch.Tensor] | None = None,
    dynamics: str = "jump",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The knowledge mean and variance (B, K) after each learner's last row: :func:`run_filter`'s
    final state, without autograd and without its probabilities, by :func:`prefix_filter` (storing
    every learner's end state after a fit or an absorb is one pass over each learner's whole history,
    and :func:`run_filter` would step every learner to the longest one's end). A padded step of
    :func:`run_filter` leaves the state as it was (zero elapsed time, weight and gain) but for the
    variance floor of :func:`observe`, applied here to the learners that had padding, so the result
    is :func:`run_filter`'s to rounding (``tests/tracing/test_psikt.py`` pins it to 1e-10). Float64
    throughout, as prediction.
    """
    batch = padded.torch(torch.float64)
    _, mean, variance = prefix_filter(course, raw, batch, start, dynamics)
    padding = batch["mask"].sum(1) < batch["mask"].shape[1]
    variance[padding] = torch.clamp(variance[padding], min=_VARIANCE_FLOOR)
    return mean, variance


class CourseModel(PyroModule):
    """The generative model; holds the course-level parameters (module-local, never global)."""

    share: torch.Tensor  # buffers, registered in __init__
    practised: torch.Tensor
    off_diagonal: torch.Tensor

    def __init__(
        self,
        *,
        q_matrix: np.ndarray,
        item_rate: np.ndarray,
        n_learners: int,
        edge_prior: float | np.ndarray,
        temperature: float,
        dynamics: str = "jump",
    ) -> None:
        super().__init__()
        n_items, n_skills = q_matrix.shape
        self.n_learners, self.n_skills, self.temperature = n_learners, n_skills, temperature
        self.dynamics = dynamics
        share = q_matrix / np.maximum(q_matrix.sum(axis=1, keepdims=True), 1)
        self.register_buffer("share", torch.as_tensor(share, dtype=torch.float32))
        self.register_buffer("practised", torch.as_tensor(q_matrix, dtype=torch.float32))
        self.register_buffer("off_diagonal", 1 - torch.eye(n_skills))
        # The prior probability of each edge (K, K): ``edge_prior`` everywhere, or higher where the
        # course's authors declared a prerequisite (see :func:`edge_prior_matrix`).
        prior = np.broadcast_to(np.asarray(edge_prior, dtype=np.float64), (n_skills, n_skills))
        self.register_buffer("edge_prior_logits", torch.as_tensor(np.log(prior / (1 - prior)), dtype=torch.float32))
        rate = torch.as_tensor(np.clip(item_rate, 0.05, 0.95), dtype=torch.float32)
        self.bias = pyro_param(torch.special.ndtri(rate))
        self.scale = pyro_param(torch.tensor(1.0), constraint=constraints.positive)
        self.gain = pyro_param(torch.full((n_skills,), 0.1), constraint=constraints.unit_interval)
        self.ceiling = pyro_param(torch.full((n_skills,), 2.0))
        self.noise = pyro_param(torch.tensor(0.05), constraint=constraints.positive)
        # gamma starts near 0.9: an edge, once there, gates learning strongly; a gamma of 0.5
        # capped the gate at halving the gain, and the fit stacked redundant edges to sharpen it.
        self.population_loc = pyro_param(torch.tensor([math.log(0.2), 0.0, 0.0, 2.0, 0.0]))
        self.population_scale = pyro_param(torch.full((N_TRAITS,), 0.5), constraint=constraints.positive)

    def course(self, graph: torch.Tensor) -> dict[str, torch.Tensor]:
        typical = (self.practised.T @ self.bias) / torch.clamp(self.practised.sum(0), min=1)
        return {
            "weight": self.scale * self.share,
            "bias": self.bias,
            "gain": self.gain * self.practised,
            "scale": self.scale,
            "typical": typical,
            "practised": self.practised,
            "ceiling": self.ceiling,
            "noise": self.noise,
            "graph": graph * self.off_diagonal,
        }

    def forward(self, batch: dict[str, torch.Tensor], index: torch.Tensor) -> None:
        prior = LogitRelaxedBernoulli(torch.tensor(self.temperature), logits=self.edge_prior_logits)
        graph = torch.sigmoid(pyro.sample("graph", prior.to_event(2)))
        course = self.course(graph)
        with pyro.plate("learners", self.n_learners, subsample=index):
            raw = pyro.sample("traits", dist.Normal(self.population_loc, self.population_scale).to_event(1))
            log_likelihood, *_ = run_filter(course, raw, batch, dynamics=self.dynamics)
            pyro.factor("answers", log_likelihood)


class CourseGuide(PyroModule):
    """q(A) relaxed Bernoulli per edge, q(s_l) Normal per learner."""

    def __init__(
        self,
        *,
        n_learners: int,
        n_skills: int,
        population_loc: torch.Tensor,
        temperature: float,
        known: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.temperature = temperature
        self.edge_logits = pyro_param(edge_logits_start(known, n_skills))
        self.trait_loc = pyro_param(population_loc.detach().expand(n_learners, N_TRAITS).clone())
        self.trait_scale = pyro_param(torch.full((n_learners, N_TRAITS), 0.1), constraint=constraints.positive)

    def forward(self, batch: dict[str, torch.Tensor], index: torch.Tensor) -> None:
        pyro.sample("graph", LogitRelaxedBernoulli(torch.tensor(self.temperature), logits=self.edge_logits).to_event(2))
        with pyro.plate("learners", self.trait_loc.shape[0], subsample=index):
            pyro.sample("traits", dist.Normal(self.trait_loc[index], self.trait_scale[index]).to_event(1))


class TraitEncoder(torch.nn.Module):
    """Amortised inference: a learner's answers -> the Normal posterior over their traits, by one
    forward pass (no per-learner optimisation). Each answer is coded by (item, right or wrong),
    pooled over the sequence plainly and weighted by position (so a learner who improves reads
    differently from one who declines), with the sequence's length and mean log gap; a small
    network maps that to trait means (around the population's) and sds."""

    def __init__(self, *, n_items: int, population_loc: torch.Tensor, width: int = 16, hidden: int = 32) -> None:
        super().__init__()
        self.answer = torch.nn.Embedding(2 * n_items, width)
        torch.nn.init.normal_(self.answer.weight, std=0.1)
        self.hidden = torch.nn.Linear(2 * width + 2, hidden)
        self.out = torch.nn.Linear(hidden, 2 * N_TRAITS)
        torch.nn.init.zeros_(self.out.weight)
        with torch.no_grad():  # starts at the population mean with sd 0.1 (softplus(-2.25))
            self.out.bias.copy_(torch.cat([population_loc.detach(), torch.full((N_TRAITS,), -2.25)]))

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        mask = batch["mask"].to(self.answer.weight.dtype)[..., None]
        code = self.answer(batch["item"] * 2 + (batch["correct"] >= 0.5).long()) * mask
        count = mask.sum(1).clamp(min=1.0)
        position = torch.cumsum(mask, 1) / count[:, None, :]  # 0..1 through each learner's rows
        pooled = code.sum(1) / count
        trend = (code * (position - 0.5)).sum(1) / count
        gaps = (torch.log1p(batch["elapsed"].to(mask.dtype)) * mask[..., 0]).sum(1, keepdim=True) / count
        features = torch.cat([pooled, trend, torch.log1p(count), gaps], dim=1)
        out = self.out(torch.tanh(self.hidden(features)))
        return out[:, :N_TRAITS], F.softplus(out[:, N_TRAITS:]) + 1e-3


class AmortisedGuide(PyroModule):
    """q(A) relaxed Bernoulli per edge, q(s_l | answers of l) from :class:`TraitEncoder`."""

    def __init__(
        self, *, encoder: TraitEncoder, n_learners: int, n_skills: int, temperature: float, known: np.ndarray | None
    ) -> None:
        super().__init__()
        self.temperature, self.n_learners = temperature, n_learners
        self.edge_logits = pyro_param(edge_logits_start(known, n_skills))
        self.encoder = encoder

    def forward(self, batch: dict[str, torch.Tensor], index: torch.Tensor) -> None:
        pyro.sample("graph", LogitRelaxedBernoulli(torch.tensor(self.temperature), logits=self.edge_logits).to_event(2))
        loc, scale = self.encoder(batch)
        with pyro.plate("learners", self.n_learners, subsample=index):
            pyro.sample("traits", dist.Normal(loc, scale).to_event(1))


class AbsorbModel(PyroModule):
    """Per-learner traits only, course-level parameters frozen: the prior is the course posterior."""

    def __init__(
        self,
        *,
        course: dict[str, torch.Tensor],
        prior_loc: torch.Tensor,
        prior_scale: torch.Tensor,
        starts: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        dynamics: str = "jump",
    ) -> None:
        super().__init__()
        self.frozen, self.prior_loc, self.prior_scale, self.dynamics = course, prior_loc, prior_scale, dynamics
        self.starts = starts  # resume flag (B,), mean (B, K), variance (B, K)

    def forward(self, batch: dict[str, torch.Tensor], index: torch.Tensor) -> None:
        with pyro.plate("learners", self.prior_loc.shape[0], subsample=index):
            raw = pyro.sample("traits", dist.Normal(self.prior_loc[index], self.prior_scale[index]).to_event(1))
            resume, mean, variance = (part[index] for part in self.starts)
            fresh_mean, fresh_variance = initial_knowledge(raw, mean.shape[1])
            start = (
                torch.where(resume[:, None], mean, fresh_mean),
                torch.where(resume[:, None], variance, fresh_variance),
            )
            log_likelihood, _, _ = prefix_filter(self.frozen, raw, batch, start, dynamics=self.dynamics)
            pyro.factor("answers", log_likelihood)


class AbsorbGuide(PyroModule):
    def __init__(self, prior_loc: torch.Tensor, prior_scale: torch.Tensor) -> None:
        super().__init__()
        self.trait_loc = pyro_param(prior_loc.clone())
        self.trait_scale = pyro_param(
            torch.minimum(prior_scale, torch.tensor(0.1)).clone(), constraint=constraints.positive
        )

    def forward(self, batch: dict[str, torch.Tensor], index: torch.Tensor) -> None:
        with pyro.plate("learners", self.trait_loc.shape[0], subsample=index):
            pyro.sample("traits", dist.Normal(self.trait_loc[index], self.trait_scale[index]).to_event(1))


def _absorb_steps_of_today(meta: dict[str, Any]) -> dict[str, Any]:
    """An artifact's hyper-parameters, with today's default ``absorb_steps`` where it was saved before
    the absorb's optimiser became each learner's own Adam (no ``absorb_optimiser`` in its meta) still
    holding that day's default, 10 passes: validated for torch's Adam at 0.1, which absorb no longer
    runs; 10 passes of the own Adam at 0.5 validate below today's 2 (0.7534 ± 0.0014 against
    0.7561 ± 0.0002, split 0 of bench/psikt_continual.py, docs/choices.md) at five times the cost."""
    hyper_parameters = dict(meta["hyper"])
    if "absorb_optimiser" not in meta and hyper_parameters.get("absorb_steps") == _OLD_ABSORB_STEPS:
        del hyper_parameters["absorb_steps"]  # restored() fills in today's default
    return hyper_parameters


def _with_all_traits(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Artifacts saved before the learning-speed trait have four traits: give every learner
    and the population lambda = 1 (raw 0), i.e. the course's own gains, so they still load."""
    missing = N_TRAITS - arrays["population_loc"].shape[-1]
    if missing <= 0:
        return arrays
    arrays = dict(arrays)
    for name, fill in (("population_loc", 0.0), ("population_scale", 0.5), ("trait_loc", 0.0), ("trait_scale", 0.5)):
        value = arrays[name]
        arrays[name] = np.concatenate([value, np.full(value.shape[:-1] + (missing,), fill)], axis=-1)
    return arrays


class PsiKT(Estimator):
    """PSI-KT: OU knowledge per (learner, skill), learner traits, a learned prerequisite graph.

    Hyper-parameters: ``steps`` SVI steps of ``batch_size`` learners at ``learning_rate``;
    ``max_length`` first rows of each learner used in fitting (prediction reads all);
    ``unit_seconds`` the time unit of the forgetting rate on clocked data; ``edge_prior``
    the prior probability of an edge (sparsity); ``temperature`` of the relaxed edges;
    ``known_edge_prior`` the prior probability of an edge the course's authors declared
    (:meth:`with_known_prerequisites`; the graph starts from them and the answers may drop them);
    ``absorb_steps`` passes of :meth:`absorb` over the newcomers (so its cost grows with the
    newcomers, not with the course); ``threads`` torch CPU threads; ``dynamics`` "jump" (the
    default: practice jumps gated by the graph) or "ou" (the paper's: the graph raises the OU
    level, no practice step; see the module docstring).
    """

    kind = "psikt"
    PARAMS = hyper.PSIKT
    has_traits = True

    def configure(self, config: dict[str, Any]) -> None:
        super().configure(config)
        self.steps, self.batch_size, self.learning_rate = config["steps"], config["batch_size"], config["learning_rate"]
        self.max_length, self.unit_seconds, self.edge_prior = (
            config["max_length"],
            config["unit_seconds"],
            config["edge_prior"],
        )
        self.temperature, self.absorb_steps, self.threads = (
            config["temperature"],
            config["absorb_steps"],
            config["threads"],
        )
        self.known_edge_prior, self.encoder = config["known_edge_prior"], config["encoder"]
        self.dynamics: str = config["dynamics"]
        self.unit = 1.0
        self.q_matrix = np.zeros((0, 0), dtype=bool)
        self.arrays: dict[str, np.ndarray] = {}
        self.learner_index: dict[str, int] = {}
        self.losses: list[float] = []
        self.timings: dict[str, float] = {}

    # ----------------------------------------------------------------- fitting

    def fit(self, data: Dataset, *, seed: int = 0, progress: Progress | None = None) -> Self:
        progress = progress or no_progress
        started = time.perf_counter()
        self.q_matrix = data.q_matrix.copy()
        self._item_ids, self._skill_ids = data.item_ids, data.skill_ids
        self.unit = time_unit(data, self.unit_seconds)
        hits = np.bincount(data.item, weights=data.correct, minlength=data.n_items)
        counts = np.bincount(data.item, minlength=data.n_items)
        overall = float(data.correct.mean()) if data.n_rows else 0.5
        item_rate = (hits + 2 * overall) / (counts + 2)
        with fitting_context(threads=self.threads, seed=seed):
            known = known_matrix(data.skill_ids, self.known_prerequisites) if self.known_edge_prior > 0 else None
            model = CourseModel(
                q_matrix=data.q_matrix,
                item_rate=item_rate,
                n_learners=data.n_learners,
                edge_prior=edge_prior_matrix(known, self.edge_prior, self.known_edge_prior, data.n_skills),
                temperature=self.temperature,
                dynamics=self.dynamics,
            )
            encoder = TraitEncoder(n_items=data.n_items, population_loc=model.population_loc) if self.encoder else None
            guide: CourseGuide | AmortisedGuide = (
                AmortisedGuide(
                    encoder=encoder,
                    n_learners=data.n_learners,
                    n_skills=data.n_skills,
                    temperature=self.temperature,
                    known=known,
                )
                if encoder is not None
                else CourseGuide(
                    n_learners=data.n_learners,
                    n_skills=data.n_skills,
                    population_loc=model.population_loc,
                    temperature=self.temperature,
                    known=known,
                )
            )
            padded = pad_learners(data, np.arange(data.n_learners), unit=self.unit, max_length=self.max_length).torch()
            elbo = TraceMeanField_ELBO()

            def loss(index: np.ndarray) -> torch.Tensor:
                batch = batch_rows(padded, index)
                value: torch.Tensor = elbo.differentiable_loss(model, guide, batch, torch.as_tensor(index))
                return value

            self.losses = run_svi(
                loss,
                list(model.parameters()) + list(guide.parameters()),
                n_learners=data.n_learners,
                batch_size=min(self.batch_size, data.n_learners),
                steps=self.steps,
                learning_rate=self.learning_rate,
                seed=seed,
                progress=progress,
                lengths=np.minimum(data.lengths, self.max_length),
            )
            with torch.no_grad():
                self.arrays = {
                    "bias": model.bias.double().numpy().copy(),
                    "scale": np.array(float(model.scale)),
                    "gain": model.gain.double().numpy().copy(),
                    "ceiling": model.ceiling.double().numpy().copy(),
                    "noise": np.array(float(model.noise)),
                    "edge_logits": guide.edge_logits.double().numpy().copy(),
                    "population_loc": model.population_loc.double().numpy().copy(),
                    "population_scale": model.population_scale.double().numpy().copy(),
                }
                if isinstance(guide, AmortisedGuide):
                    weights = guide.encoder.state_dict().items()
                    self.arrays.update({f"{ENCODER_PREFIX}{name}": value.double().numpy() for name, value in weights})
                else:
                    self.arrays["trait_loc"] = guide.trait_loc.double().numpy().copy()
                    self.arrays["trait_scale"] = guide.trait_scale.double().numpy().copy()
        if self.encoder:
            self.arrays["trait_loc"], self.arrays["trait_scale"] = self.encode_traits(data)
        self.learner_index = {name: index for index, name in enumerate(data.learner_ids)}
        self._store_end_states(data, np.arange(data.n_learners))
        self.timings = {"fit_seconds": time.perf_counter() - started}
        progress("svi", 1.0)
        return self

    def absorb(
        self,
        data: Dataset,
        *,
        seed: int = 0,
        steps: int | None = None,
        learning_rate: float = ABSORB_LEARNING_RATE,
        per_learner: bool = True,
        progress: Progress | None = None,
    ) -> Self:
        """Fit only the traits of ``data``'s learners, the course posterior (graph, items, gains,
        population) frozen: the incremental path for new learners and new answers.

        A learner unknown to the model starts from the population prior and the initial
        knowledge law; a known one from its stored trait posterior (the previous period's
        posterior is this period's prior) and from its stored knowledge state, so ``data``
        then holds only its new rows. ``steps`` passes over ``data`` (default ``absorb_steps``)
        at Adam's ``learning_rate``; ``per_learner`` (the default) gives each learner its own Adam,
        moved once a pass (:class:`RowAdam`), False torch's Adam over the whole table (the
        previous default, 10 passes at 0.1, kept for ``bench/psikt_continual.py``'s comparison).
        """
        progress = progress or no_progress
        started = time.perf_counter()
        data = self.aligned(data)
        known = np.array([self.learner_index.get(name, -1) for name in data.learner_ids], dtype=np.int64)
        resume = known >= 0
        prior_loc = np.where(
            resume[:, None], self.arrays["trait_loc"][np.maximum(known, 0)], self.arrays["population_loc"][None, :]
        )
        prior_scale = np.where(
            resume[:, None], self.arrays["trait_scale"][np.maximum(known, 0)], self.arrays["population_scale"][None, :]
        )
        start_mean = np.where(resume[:, None], self.arrays["end_mean"][np.maximum(known, 0)], 0.0)
        start_variance = np.where(resume[:, None], self.arrays["end_variance"][np.maximum(known, 0)], 1.0)
        start_at = np.where(resume, self.arrays["end_at"][np.maximum(known, 0)], np.nan)
        first_gap = self._first_gaps(data, start_at)
        new_loc, new_scale = self._traits_posterior(
            data,
            (prior_loc, prior_scale),
            (resume, start_mean, start_variance, first_gap),
            seed=seed,
            passes=steps or self.absorb_steps,
            learning_rate=learning_rate,
            per_learner=per_learner,
            progress=progress,
        )
        slots = known.copy()
        fresh = np.flatnonzero(~resume)
        slots[fresh] = len(self.learner_index) + np.arange(len(fresh))
        for position in fresh:
            self.learner_index[data.learner_ids[position]] = int(slots[position])
        self._grow(len(self.learner_index))
        self.arrays["trait_loc"][slots] = new_loc
        self.arrays["trait_scale"][slots] = new_scale
        starts_numpy = (resume, start_mean, start_variance, first_gap)
        self._store_end_states(data, np.arange(data.n_learners), slots=slots, starts=starts_numpy)
        self.timings["absorb_seconds"] = time.perf_counter() - started
        progress("absorb", 1.0)
        return self

    def traits_infer(self, data: Dataset, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Each learner's trait posterior from ``data`` as their whole history, the course posterior
        frozen, starting from the population prior whether or not the model knows the learner (the
        history already holds what the fit saw of them, so nothing is counted twice), and stored
        nowhere: (loc, scale) of the raw traits, (n_learners, 5). ``absorb_steps`` passes of each
        learner's own Adam, as :meth:`absorb`; a model fitted with ``encoder`` reads them off its
        encoder instead (one forward pass, :meth:`encode_traits`)."""
        if self.encoder:
            return self.encode_traits(data)
        data = self.aligned(data)
        count = data.n_learners
        prior = (
            np.repeat(self.arrays["population_loc"][None, :], count, axis=0),
            np.repeat(self.arrays["population_scale"][None, :], count, axis=0),
        )
        n_skills = len(self._skill_ids)
        fresh = (np.zeros(count, dtype=bool), np.zeros((count, n_skills)), np.ones((count, n_skills)), np.zeros(count))
        return self._traits_posterior(
            data, prior, fresh, seed=seed, passes=self.absorb_steps, learning_rate=ABSORB_LEARNING_RATE
        )

    def _traits_posterior(
        self,
        data: Dataset,
        prior: tuple[np.ndarray, np.ndarray],
        starts: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        *,
        seed: int,
        passes: int,
        learning_rate: float,
        per_learner: bool = True,
        progress: Progress | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """SVI over the traits of ``data``'s learners only, the course frozen: (loc, scale), (B, 5).

        ``prior`` (loc, scale) per learner; ``starts`` (resume flag, knowledge mean, variance, time
        units from the stored state to the first row) say where each learner's filter resumes."""
        prior_loc, prior_scale = prior
        resume, start_mean, start_variance, first_gap = starts
        padded_numpy = pad_learners(data, np.arange(data.n_learners), unit=self.unit, max_length=self.max_length)
        padded_numpy.elapsed[:, 0] = first_gap
        with fitting_context(threads=self.threads, seed=seed):
            course = {name: value.float() for name, value in self._course_tensors().items()}

            def as_float(array: np.ndarray) -> torch.Tensor:
                return torch.as_tensor(array, dtype=torch.float32)

            model = AbsorbModel(
                course=course,
                prior_loc=as_float(prior_loc),
                prior_scale=as_float(prior_scale),
                starts=(torch.as_tensor(resume), as_float(start_mean), as_float(start_variance)),
                dynamics=self.dynamics,
            )
            guide = AbsorbGuide(as_float(prior_loc), as_float(prior_scale))
            padded = padded_numpy.torch()
            elbo = TraceMeanField_ELBO()

            def loss(index: np.ndarray) -> torch.Tensor:
                value: torch.Tensor = elbo.differentiable_loss(
                    model, guide, batch_rows(padded, index), torch.as_tensor(index)
                )
                return value

            # Each learner's traits are its own parameters, so a pass over the newcomers is what
            # counts: on DBE-KT22, 10 passes at 0.1 gave the multi-step AUC of 60 passes at 0.05
            # (torch's Adam); each learner's own Adam (per_learner) gave it in 2 passes at 0.5
            # (docs/choices.md, "psikt absorb: each learner its own Adam").
            # Each learner's own Adam moves it by its own gradient alone, whatever else the minibatch
            # holds (Adam is blind to the N / B scale of a subsample), so there the minibatch is as
            # large as memory allows: each filter step is then one set of tensor operations over up
            # to ABSORB_BATCH learners, not eight over 128 (bench/psikt_continual.py).
            batch_size = min(ABSORB_BATCH if per_learner else max(self.batch_size, 128), data.n_learners)
            run_svi(
                loss,
                list(guide.parameters()),
                n_learners=data.n_learners,
                batch_size=batch_size,
                steps=passes * -(-data.n_learners // batch_size),
                learning_rate=learning_rate,
                seed=seed,
                progress=progress or no_progress,
                stage="absorb",
                lengths=np.minimum(data.lengths, self.max_length),
                per_learner=per_learner,
            )
            with torch.no_grad():
                return guide.trait_loc.double().numpy().copy(), guide.trait_scale.double().numpy().copy()

    def encode_traits(self, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """Trait posteriors (loc, scale), (B, 5), of ``data``'s learners from their rows by the
        encoder's forward pass (each learner's first ``max_length`` rows, as in fitting). Needs a
        model fitted with ``encoder``."""
        if not self.encoder or f"{ENCODER_PREFIX}out.bias" not in self.arrays:
            raise ValueError("this psikt model has no trait encoder (fit it with encoder=True)")
        data = self.aligned(data)
        encoder = TraitEncoder(
            n_items=len(self._item_ids), population_loc=torch.as_tensor(self.arrays["population_loc"])
        ).double()
        state = {
            name[len(ENCODER_PREFIX) :]: torch.as_tensor(value)
            for name, value in self.arrays.items()
            if name.startswith(ENCODER_PREFIX)
        }
        encoder.load_state_dict(state)
        loc = np.empty((data.n_learners, N_TRAITS))
        scale = np.empty((data.n_learners, N_TRAITS))
        with torch.no_grad():
            for chunk in np.array_split(np.arange(data.n_learners), max(1, data.n_learners // 512)):
                if len(chunk):
                    padded = pad_learners(data, chunk, unit=self.unit, max_length=self.max_length)
                    chunk_loc, chunk_scale = encoder(padded.torch(torch.float64))
                    loc[chunk], scale[chunk] = chunk_loc.numpy(), chunk_scale.numpy()
        return loc, scale

    def predict_proba_given(self, data: Dataset, traits: np.ndarray) -> np.ndarray:
        """P(correct) for every row, as :meth:`predict_proba`, with each learner's traits (B, 5)
        given (raw scale, the trait posterior's means) instead of the stored or population ones."""
        data = self.aligned(data)
        out = np.empty(data.n_rows, dtype=np.float64)
        for chunk in np.array_split(np.arange(data.n_learners), max(1, data.n_learners // 512)):
            if len(chunk):
                probability, _, _ = self._filter(data, chunk, np.asarray(traits, dtype=np.float64)[chunk])
                out[np.isfinite(probability)] = probability[np.isfinite(probability)]
        return out

    # ----------------------------------------------------------------- internals

    def _first_gaps(self, data: Dataset, start_at: np.ndarray) -> np.ndarray:
        """Time units from each learner's stored last answer to its first new row (0 if none)."""
        first = np.full(data.n_learners, np.nan)
        has_rows = data.lengths > 0
        first[has_rows] = data.timestamp[data.offsets[:-1][has_rows]]
        gap = (first - start_at) / self.unit
        return np.where(np.isfinite(gap), np.maximum(gap, 0.0), 0.0)

    def _grow(self, size: int) -> None:
        for name in ("trait_loc", "trait_scale", "end_mean", "end_variance", "end_at"):
            array = self.arrays[name]
            if len(array) < size:
                extra = np.zeros((size - len(array),) + array.shape[1:], dtype=array.dtype)
                self.arrays[name] = np.concatenate([array, extra])

    def _course_tensors(self) -> dict[str, torch.Tensor]:
        share = self.q_matrix / np.maximum(self.q_matrix.sum(axis=1, keepdims=True), 1)
        graph = 1 / (1 + np.exp(-self.arrays["edge_logits"]))
        np.fill_diagonal(graph, 0.0)
        return {
            "weight": torch.as_tensor(float(self.arrays["scale"]) * share, dtype=torch.float64),
            "bias": torch.as_tensor(self.arrays["bias"], dtype=torch.float64),
            "gain": torch.as_tensor(self.arrays["gain"][None, :] * self.q_matrix, dtype=torch.float64),
            "practised": torch.as_tensor(self.q_matrix, dtype=torch.float64),
            "ceiling": torch.as_tensor(self.arrays["ceiling"], dtype=torch.float64),
            "noise": torch.as_tensor(self.arrays["noise"], dtype=torch.float64),
            "scale": torch.as_tensor(self.arrays["scale"], dtype=torch.float64),
            "typical": torch.as_tensor(self._typical(), dtype=torch.float64),
            "graph": torch.as_tensor(graph, dtype=torch.float64),
        }

    def _raw_traits(self, learner_ids: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Trait posterior (loc, scale), (B, 5): the learner's own if known, else the population."""
        loc = np.repeat(self.arrays["population_loc"][None, :], len(learner_ids), axis=0)
        scale = np.repeat(self.arrays["population_scale"][None, :], len(learner_ids), axis=0)
        for position, name in enumerate(learner_ids):
            slot = self.learner_index.get(name)
            if slot is not None:
                loc[position], scale[position] = self.arrays["trait_loc"][slot], self.arrays["trait_scale"][slot]
        return loc, scale

    def _filter(
        self, data: Dataset, learners: np.ndarray, raw: np.ndarray, starts: tuple[np.ndarray, ...] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run the float64 filter over ``learners``: (P(correct) per row of data, final mean, final var)."""
        padded, raw_tensor, start = self._filter_inputs(data, learners, raw, starts)
        with torch.no_grad():
            _, probability, mean, variance = run_filter(
                self._course_tensors(), raw_tensor, padded.torch(torch.float64), start, dynamics=self.dynamics
            )
        out = np.full(data.n_rows, np.nan)
        out[padded.rows[padded.mask]] = probability.numpy()[padded.mask]
        return out, mean.numpy(), variance.numpy()

    def _end_states(
        self, data: Dataset, learners: np.ndarray, raw: np.ndarray, starts: tuple[np.ndarray, ...] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Knowledge mean and variance (B, K) after ``learners``' last rows (:func:`final_knowledge`);
        ``starts`` as in :meth:`_filter`."""
        padded, raw_tensor, start = self._filter_inputs(data, learners, raw, starts)
        with torch.no_grad():
            mean, variance = final_knowledge(self._course_tensors(), raw_tensor, padded, start, dynamics=self.dynamics)
        return mean.numpy(), variance.numpy()

    def _filter_inputs(
        self, data: Dataset, learners: np.ndarray, raw: np.ndarray, starts: tuple[np.ndarray, ...] | None
    ) -> tuple[Padded, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """``learners``' padded rows, traits and where their filter starts: the initial law, or with
        ``starts`` (resume flag, mean, variance, time to the first row; indexed by learner) a resumed
        learner's stored state."""
        padded = pad_learners(data, learners, unit=self.unit)
        if starts is not None:
            padded.elapsed[:, 0] = starts[3][learners]
        raw_tensor = torch.as_tensor(raw, dtype=torch.float64)
        if starts is None:
            return padded, raw_tensor, None
        resume = torch.as_tensor(starts[0][learners])[:, None]
        fresh_mean, fresh_variance = initial_knowledge(raw_tensor, len(self._skill_ids))
        start = (
            torch.where(resume, torch.as_tensor(starts[1][learners]), fresh_mean),
            torch.where(resume, torch.as_tensor(starts[2][learners]), fresh_variance),
        )
        return padded, raw_tensor, start

    def _store_end_states(
        self,
        data: Dataset,
        learners: np.ndarray,
        *,
        slots: np.ndarray | None = None,
        starts: tuple[np.ndarray, ...] | None = None,
    ) -> None:
        slots = learners if slots is None else slots
        size = len(self.learner_index)
        if "end_mean" not in self.arrays:
            self.arrays.update(
                end_mean=np.zeros((0, len(self._skill_ids))),
                end_variance=np.zeros((0, len(self._skill_ids))),
                end_at=np.zeros(0),
            )
        self._grow(size)
        raw = self.arrays["trait_loc"][slots]
        # On the fit's thread count, not torch's default (every core), whose idle threads cost CPU on a busy machine.
        with fitting_context(threads=self.threads):
            for chunk in np.array_split(np.arange(len(learners)), max(1, len(learners) // _END_CHUNK)):
                if not len(chunk):
                    continue
                mean, variance = self._end_states(data, learners[chunk], raw[chunk], starts)
                self.arrays["end_mean"][slots[chunk]] = mean
                self.arrays["end_variance"][slots[chunk]] = variance
        last = data.offsets[1:] - 1
        for position, slot in zip(learners, slots):
            if data.lengths[position]:
                self.arrays["end_at"][slot] = data.timestamp[last[position]]
            elif starts is None or not starts[0][position]:
                self.arrays["end_at"][slot] = np.nan

    # ----------------------------------------------------------------- prediction

    def predict_proba(self, data: Dataset) -> np.ndarray:
        data = self.aligned(data)
        raw, _ = self._raw_traits(data.learner_ids)
        out = np.empty(data.n_rows, dtype=np.float64)
        learners = np.arange(data.n_learners)
        for chunk in np.array_split(learners, max(1, data.n_learners // 512)):
            if len(chunk):
                probability, _, _ = self._filter(data, chunk, raw[chunk])
                chosen = np.concatenate([np.arange(*data.rows(learner).indices(data.n_rows)) for learner in chunk])
                out[chosen] = probability[chosen]
        return out

    def final_states(self, data: Dataset) -> list[LearnerState]:
        data = self.aligned(data)
        loc, scale = self._raw_traits(data.learner_ids)
        states: list[LearnerState] = []
        learners = np.arange(data.n_learners)
        for chunk in np.array_split(learners, max(1, data.n_learners // _END_CHUNK)):
            if not len(chunk):
                continue
            mean, variance = self._end_states(data, chunk, loc[chunk])
            for position, learner in enumerate(chunk):
                at = float(data.timestamp[data.offsets[learner + 1] - 1]) if data.lengths[learner] else None
                states.append(
                    self._state(
                        mean[position], variance[position], loc[learner], scale[learner], at, data.learner_ids[learner]
                    )
                )
        return states

    def _state(
        self,
        mean: np.ndarray,
        variance: np.ndarray,
        loc: np.ndarray,
        scale: np.ndarray,
        at: float | None,
        learner: str | None,
    ) -> LearnerState:
        memory = {
            "mean": mean.tolist(),
            "variance": variance.tolist(),
            "trait_loc": loc.tolist(),
            "trait_scale": scale.tolist(),
            "learner": learner,
        }
        return LearnerState(mastery=self._mastery(mean, variance), memory=memory, at=at)

    def _typical(self) -> np.ndarray:
        """Mean emission offset c_j of each skill's items, (K,)."""
        counts = self.q_matrix.sum(axis=0)
        typical: np.ndarray = (self.q_matrix.T.astype(np.float64) @ self.arrays["bias"]) / np.maximum(counts, 1)
        return typical

    def _mastery(self, mean: np.ndarray, variance: np.ndarray) -> np.ndarray:
        """P(correct) on an item of average difficulty for each skill alone, (K,)."""
        return readiness_of(
            torch.as_tensor(mean),
            torch.as_tensor(variance),
            torch.as_tensor(self.arrays["scale"], dtype=torch.float64),
            torch.as_tensor(self._typical()),
        ).numpy()

    def initial_state(self) -> LearnerState:
        loc, scale = self.arrays["population_loc"], self.arrays["population_scale"]
        mean, variance = initial_knowledge(torch.as_tensor(loc[None, :]), len(self._skill_ids))
        return self._state(mean[0].numpy(), variance[0].numpy(), loc, scale, None, None)

    def knows_learner(self, learner_id: str) -> bool:
        return learner_id in self.learner_index

    def initial_state_with_traits(self, loc: np.ndarray, scale: np.ndarray) -> LearnerState:
        loc, scale = np.asarray(loc, dtype=np.float64), np.asarray(scale, dtype=np.float64)
        mean, variance = initial_knowledge(torch.as_tensor(loc[None, :]), len(self._skill_ids))
        return self._state(mean[0].numpy(), variance[0].numpy(), loc, scale, None, None)

    def learner_state(self, learner_id: str) -> LearnerState:
        """The stored state of a fitted or absorbed learner at the end of its absorbed rows."""
        slot = self.learner_index[learner_id]
        at = float(self.arrays["end_at"][slot])
        return self._state(
            self.arrays["end_mean"][slot],
            self.arrays["end_variance"][slot],
            self.arrays["trait_loc"][slot],
            self.arrays["trait_scale"][slot],
            None if math.isnan(at) else at,
            learner_id,
        )

    def _unpack(self, state: LearnerState, at: float | None) -> tuple[torch.Tensor, ...]:
        memory = state.memory
        mean = torch.as_tensor(memory["mean"], dtype=torch.float64)[None, :]
        variance = torch.as_tensor(memory["variance"], dtype=torch.float64)[None, :]
        raw = torch.as_tensor(memory["trait_loc"], dtype=torch.float64)[None, :]
        gap = 0.0 if state.at is None or at is None else max(at - state.at, 0.0) / self.unit
        return mean, variance, raw, torch.tensor([gap], dtype=torch.float64)

    def update(self, state: LearnerState, *, item: int, correct: float, at: float) -> LearnerState:
        course = self._course_tensors()
        mean, variance, raw, gap = self._unpack(state, at)
        with torch.no_grad():
            mean, variance = drift(mean, variance, raw, gap, self._drift_graph(course))
            weight, bias = course["weight"][[item]], course["bias"][[item]]
            location, shrink = answer_location(mean, variance, weight, bias)
            mean, variance = observe(
                mean, variance, weight, location, shrink, torch.tensor([correct], dtype=torch.float64)
            )
        if self.dynamics == "ou":
            return self._next_state(state, mean, variance, at)
        with torch.no_grad():
            readiness = readiness_of(mean, variance, course["scale"], course["typical"])
            _, _, _, coupling, speed = trait_values(raw)
            gate = prerequisite_gate(readiness, coupling[:, None], course["graph"])
            mean, variance = practise(
                mean,
                variance,
                learner_gain(course["gain"][[item]], speed[:, None]),
                course["practised"][[item]],
                course["ceiling"],
                course["noise"],
                gate,
            )
        return self._next_state(state, mean, variance, at)

    def _next_state(self, state: LearnerState, mean: torch.Tensor, variance: torch.Tensor, at: float) -> LearnerState:
        memory = state.memory
        return self._state(
            mean[0].numpy(),
            variance[0].numpy(),
            np.asarray(memory["trait_loc"]),
            np.asarray(memory["trait_scale"]),
            float(at),
            memory.get("learner"),
        )

    def _drift_graph(self, course: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The graph the drift reads (``dynamics="ou"``), None where it does not (``"jump"``)."""
        return course["graph"] if self.dynamics == "ou" else None

    def predict_next(self, state: LearnerState, items: np.ndarray, *, at: float | None = None) -> np.ndarray:
        course = self._course_tensors()
        chosen = torch.as_tensor(np.asarray(items, dtype=np.int64))
        mean, variance, raw, gap = self._unpack(state, at)
        with torch.no_grad():
            mean, variance = drift(mean, variance, raw, gap, self._drift_graph(course))
            weight = course["weight"][chosen]
            location, _ = answer_location(
                mean.expand(len(chosen), -1), variance.expand(len(chosen), -1), weight, course["bias"][chosen]
            )
            probability: np.ndarray = torch.special.ndtr(location).numpy()
            return probability

    def mastery_at(self, state: LearnerState, at: float) -> np.ndarray:
        """Mastery after drifting to ``at`` with no practice: it relaxes towards the long-run level
        (with ``dynamics="ou"``, raised by the prerequisites' knowledge)."""
        mean, variance, raw, gap = self._unpack(state, at)
        graph = self._drift_graph(self._course_tensors()) if self.dynamics == "ou" else None
        with torch.no_grad():
            mean, variance = drift(mean, variance, raw, gap, graph)
        return self._mastery(mean[0].numpy(), variance[0].numpy())

    # ----------------------------------------------------------------- interpretation

    def edge_probabilities(self) -> np.ndarray:
        """q(A_ik = 1), (K, K): skill i is a prerequisite of skill k; zero diagonal."""
        probability: np.ndarray = 1 / (1 + np.exp(-self.arrays["edge_logits"]))
        np.fill_diagonal(probability, 0.0)
        return probability

    def learned_prerequisites(self, threshold: float = 0.5, *, reduced: bool = True) -> list[tuple[str, str, float]]:
        """Edges (prerequisite skill id, skill id, probability) with probability >= ``threshold``.

        ``reduced`` (the default, what a fit stores) reports the graph in transitively reduced
        form, as prerequisite maps are drawn: an edge i -> k is dropped when a path
        i -> ... -> k of edges each more probable than it is also learned (see
        :func:`drop_implied_edges`). ``reduced=False``: every edge over the threshold.
        """
        probability = self.edge_probabilities()
        chosen = probability >= threshold
        if reduced:
            chosen = drop_implied_edges(probability, chosen)
        sources, targets = np.nonzero(chosen)
        edges = [(self._skill_ids[i], self._skill_ids[k], float(probability[i, k])) for i, k in zip(sources, targets)]
        return sorted(edges, key=lambda edge: -edge[2])

    def learner_traits(self, state: LearnerState) -> dict[str, Any]:
        """Posterior mean and sd of the traits in natural units (rates per ``unit``)."""
        loc = np.asarray(state.memory["trait_loc"], dtype=np.float64)
        scale = np.asarray(state.memory["trait_scale"], dtype=np.float64)
        # Moments of the transformed traits by a fixed set of normal draws (deterministic).
        draws = loc + scale * np.random.default_rng(0).standard_normal((4000, N_TRAITS))
        values = trait_values(torch.as_tensor(draws))
        traits: dict[str, Any] = {}
        for name, value in zip(TRAIT_NAMES, values):
            if name == "learning_speed" and self.dynamics == "ou":
                continue  # the paper's model has no practice step, so no learning speed: its four traits
            traits[name] = {"mean": float(value.mean()), "sd": float(value.std())}
        traits["forgetting_rate"]["unit"] = f"per {self.unit:g} {'s' if self.unit != 1.0 else 'step'}"
        return traits

    def traits_words(self, state: LearnerState) -> list[str]:
        return trait_words(
            np.asarray(state.memory["trait_loc"], dtype=np.float64),
            np.asarray(state.memory["trait_scale"], dtype=np.float64),
            self.arrays["population_loc"],
            self.arrays["population_scale"],
            learning_speed=self.dynamics != "ou",
        )

    def params(self) -> dict[str, Any]:
        population = {}
        for position, name in enumerate(TRAIT_NAMES):
            if name == "learning_speed" and self.dynamics == "ou":
                continue
            population[name] = {
                "loc": float(self.arrays["population_loc"][position]),
                "scale": float(self.arrays["population_scale"][position]),
            }
        return {
            "dynamics": self.dynamics,
            "population_traits_raw": population,
            "emission_scale": float(self.arrays["scale"]),
            "mean_gain": float(self.arrays["gain"].mean()),
            "unit": self.unit,
            "edges_over_half": len(self.learned_prerequisites(0.5, reduced=False)),
            "final_loss": self.losses[-1] if self.losses else None,
            **self.timings,
        }

    # ----------------------------------------------------------------- persistence

    def save(self, path: Path) -> None:
        meta = {
            "kind": self.kind,
            "hyper": self.hyper_parameters(),
            "unit": self.unit,
            "item_ids": list(self._item_ids),
            "skill_ids": list(self._skill_ids),
            "learners": sorted(self.learner_index, key=self.learner_index.__getitem__),
            "timings": self.timings,
            "absorb_optimiser": ABSORB_OPTIMISER,
        }
        save_artifact(path, meta, {**self.arrays, "q_matrix": self.q_matrix})

    @classmethod
    def load(cls, path: Path) -> Self:
        meta, arrays = load_artifact(path)
        model = cls.restored(_absorb_steps_of_today(meta))
        model.unit = meta["unit"]
        model._item_ids, model._skill_ids = tuple(meta["item_ids"]), tuple(meta["skill_ids"])
        model.q_matrix = arrays.pop("q_matrix").astype(bool)
        model.arrays = _with_all_traits(arrays)
        model.learner_index = {name: index for index, name in enumerate(meta["learners"])}
        model.timings = meta.get("timings", {})
        return model
