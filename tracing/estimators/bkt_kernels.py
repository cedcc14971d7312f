"""Numba kernels for BKT: exact EM (scaled forward-backward) and the forward filter.

Layout shared by the kernels. Observations are flat arrays; a *sequence* is one
learner's answers on one skill, rows ``sequence_start[s]:sequence_start[s + 1]``
of ``observation_emission`` (index into the guess/slip arrays) and
``observation_correct`` (float in [0, 1]; fractional answers are soft evidence).
State 1 is "knows the skill", state 0 "does not".

Kept free of Python objects so they compile once (``cache=True``) and run
without the GIL on every core.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# Probabilities are kept inside [EPSILON, 1 - EPSILON] so that no skill can lock
# into a state EM can never leave (a prior of exactly 0 or 1 has zero gradient).
EPSILON = 1e-6
# Step likelihoods are multiplied and logged once per 16 steps: a log per step
# costs more than the rest of the forward step together.


@njit(cache=True, inline="always")
def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


@njit(cache=True)
def _em_skill(
    skill: int,
    sequence_start: np.ndarray,
    observation_emission: np.ndarray,
    observation_correct: np.ndarray,
    sequence_weight: np.ndarray,
    sequence_class: np.ndarray,
    skill_sequence_start: np.ndarray,
    emission_start: np.ndarray,
    prior: np.ndarray,
    learn: np.ndarray,
    forget: np.ndarray,
    guess: np.ndarray,
    slip: np.ndarray,
    fit_forget: bool,
    max_iter: int,
    tol: float,
    max_guess: float,
    max_slip: float,
    loglik: np.ndarray,
    iterations: np.ndarray,
    max_length: int,
) -> None:
    """EM for every restart of one skill, advanced together over the data.

    Restarts are independent, so stepping them side by side gives the CPU
    several dependency chains at once (the forward recursion alone is
    latency-bound); a restart leaves the set when its log-likelihood gains less
    than ``tol`` per answer, or after ``max_iter`` iterations.
    """
    n_restart = prior.shape[0]
    n_class = prior.shape[2]
    first_emission = emission_start[skill]
    n_emission = emission_start[skill + 1] - first_emission
    answers = 0.0
    for sequence in range(skill_sequence_start[skill], skill_sequence_start[skill + 1]):
        answers += sequence_weight[sequence] * (sequence_start[sequence + 1] - sequence_start[sequence])
    alpha = np.empty((max_length, n_restart))
    inverse_scale = np.empty((max_length, n_restart))
    lane_restart = np.arange(n_restart)
    previous = np.full(n_restart, -np.inf)
    # Per-lane copies of the parameters and the expected counts of the E-step.
    lane_prior = np.empty((n_class, n_restart))
    lane_learn = np.empty(n_restart)
    lane_forget = np.empty(n_restart)
    lane_guess = np.empty((n_emission, n_restart))
    lane_slip = np.empty((n_emission, n_restart))
    prior_count = np.empty((n_class, n_restart))
    prior_total = np.empty(n_class)
    guess_count = np.empty((n_emission, n_restart))
    guess_total = np.empty((n_emission, n_restart))
    slip_count = np.empty((n_emission, n_restart))
    slip_total = np.empty((n_emission, n_restart))
    learn_count = np.empty(n_restart)
    learn_total = np.empty(n_restart)
    forget_count = np.empty(n_restart)
    forget_total = np.empty(n_restart)
    lane_loglik = np.empty(n_restart)
    known = np.empty(n_restart)
    product = np.empty(n_restart)
    beta_known = np.empty(n_restart)
    beta_unknown = np.empty(n_restart)
    n_lane = n_restart
    iteration = 0
    while n_lane > 0 and iteration < max_iter:
        iteration += 1
        for lane in range(n_lane):
            restart = lane_restart[lane]
            for klass in range(n_class):
                lane_prior[klass, lane] = prior[restart, skill, klass]
            lane_learn[lane] = learn[restart, skill]
            lane_forget[lane] = forget[restart, skill]
            for local in range(n_emission):
                lane_guess[local, lane] = guess[restart, first_emission + local]
                lane_slip[local, lane] = slip[restart, first_emission + local]
        prior_count[:, :n_lane] = 0.0
        prior_total[:] = 0.0
        guess_count[:, :n_lane] = 0.0
        guess_total[:, :n_lane] = 0.0
        slip_count[:, :n_lane] = 0.0
        slip_total[:, :n_lane] = 0.0
        learn_count[:n_lane] = 0.0
        learn_total[:n_lane] = 0.0
        forget_count[:n_lane] = 0.0
        forget_total[:n_lane] = 0.0
        lane_loglik[:n_lane] = 0.0
        for sequence in range(skill_sequence_start[skill], skill_sequence_start[skill + 1]):
            weight = sequence_weight[sequence]
            start = sequence_start[sequence]
            length = sequence_start[sequence + 1] - start
            klass = sequence_class[sequence]
            for lane in range(n_lane):
                known[lane] = lane_prior[klass, lane]
                product[lane] = 1.0
            for step in range(length):
                local = observation_emission[start + step] - first_emission
                correct = observation_correct[start + step]
                for lane in range(n_lane):
                    g = lane_guess[local, lane]
                    s = lane_slip[local, lane]
                    if_known = s + correct * (1.0 - 2.0 * s)
                    if_unknown = (1.0 - g) + correct * (2.0 * g - 1.0)
                    joint_known = known[lane] * if_known
                    evidence = joint_known + (1.0 - known[lane]) * if_unknown
                    inverse = 1.0 / evidence
                    posterior = joint_known * inverse
                    alpha[step, lane] = posterior
                    inverse_scale[step, lane] = inverse
                    product[lane] *= evidence
                    known[lane] = posterior * (1.0 - lane_forget[lane]) + (1.0 - posterior) * lane_learn[lane]
                # Every evidence is >= EPSILON, so 16 steps cannot underflow a double.
                if step & 15 == 15:
                    for lane in range(n_lane):
                        lane_loglik[lane] += weight * math.log(product[lane])
                        product[lane] = 1.0
            for lane in range(n_lane):
                lane_loglik[lane] += weight * math.log(product[lane])
                beta_known[lane] = 1.0
                beta_unknown[lane] = 1.0
            # Backward pass with the same scaling: alpha * beta is the smoothed posterior.
            for step in range(length - 1, 0, -1):
                local = observation_emission[start + step] - first_emission
                correct = observation_correct[start + step]
                for lane in range(n_lane):
                    posterior = alpha[step, lane]
                    gamma_known = weight * posterior * beta_known[lane]
                    gamma_unknown = weight * (1.0 - posterior) * beta_unknown[lane]
                    guess_count[local, lane] += gamma_unknown * correct
                    guess_total[local, lane] += gamma_unknown
                    slip_count[local, lane] += gamma_known * (1.0 - correct)
                    slip_total[local, lane] += gamma_known
                    g = lane_guess[local, lane]
                    s = lane_slip[local, lane]
                    to_learn = lane_learn[lane]
                    to_forget = lane_forget[lane]
                    message_known = (s + correct * (1.0 - 2.0 * s)) * beta_known[lane] * inverse_scale[step, lane]
                    message_unknown = (
                        ((1.0 - g) + correct * (2.0 * g - 1.0)) * beta_unknown[lane] * inverse_scale[step, lane]
                    )
                    before = weight * alpha[step - 1, lane]
                    not_before = weight - before
                    learned = not_before * to_learn * message_known
                    learn_count[lane] += learned
                    learn_total[lane] += learned + not_before * (1.0 - to_learn) * message_unknown
                    forgot = before * to_forget * message_unknown
                    forget_count[lane] += forgot
                    forget_total[lane] += forgot + before * (1.0 - to_forget) * message_known
                    beta_unknown[lane] = (1.0 - to_learn) * message_unknown + to_learn * message_known
                    beta_known[lane] = to_forget * message_unknown + (1.0 - to_forget) * message_known
            local = observation_emission[start] - first_emission
            correct = observation_correct[start]
            prior_total[klass] += weight
            for lane in range(n_lane):
                posterior = alpha[0, lane]
                gamma_known = weight * posterior * beta_known[lane]
                gamma_unknown = weight * (1.0 - posterior) * beta_unknown[lane]
                guess_count[local, lane] += gamma_unknown * correct
                guess_total[local, lane] += gamma_unknown
                slip_count[local, lane] += gamma_known * (1.0 - correct)
                slip_total[local, lane] += gamma_known
                prior_count[klass, lane] += gamma_known
        # M-step: expected counts over expected totals, clipped to the bounds.
        lane = 0
        while lane < n_lane:
            restart = lane_restart[lane]
            for klass in range(n_class):
                if prior_total[klass] > 0.0:
                    prior[restart, skill, klass] = _clip(
                        prior_count[klass, lane] / prior_total[klass], EPSILON, 1.0 - EPSILON
                    )
            if learn_total[lane] > 0.0:
                learn[restart, skill] = _clip(learn_count[lane] / learn_total[lane], EPSILON, 1.0 - EPSILON)
            if fit_forget and forget_total[lane] > 0.0:
                forget[restart, skill] = _clip(forget_count[lane] / forget_total[lane], EPSILON, 1.0 - EPSILON)
            for local in range(n_emission):
                if guess_total[local, lane] > 0.0:
                    guess[restart, first_emission + local] = _clip(
                        guess_count[local, lane] / guess_total[local, lane], EPSILON, max_guess
                    )
                if slip_total[local, lane] > 0.0:
                    slip[restart, first_emission + local] = _clip(
                        slip_count[local, lane] / slip_total[local, lane], EPSILON, max_slip
                    )
            loglik[restart, skill] = lane_loglik[lane]
            iterations[restart, skill] = iteration
            if lane_loglik[lane] - previous[restart] < tol * answers:
                # Converged: the last lane takes its place.
                n_lane -= 1
                lane_restart[lane] = lane_restart[n_lane]
                lane_loglik[lane] = lane_loglik[n_lane]
                _move_lane(
                    n_lane,
                    lane,
                    prior_count,
                    guess_count,
                    guess_total,
                    slip_count,
                    slip_total,
                    learn_count,
                    learn_total,
                    forget_count,
                    forget_total,
                )
            else:
                previous[restart] = lane_loglik[lane]
                lane += 1


@njit(cache=True)
def _move_lane(
    source: int,
    target: int,
    prior_count: np.ndarray,
    guess_count: np.ndarray,
    guess_total: np.ndarray,
    slip_count: np.ndarray,
    slip_total: np.ndarray,
    learn_count: np.ndarray,
    learn_total: np.ndarray,
    forget_count: np.ndarray,
    forget_total: np.ndarray,
) -> None:
    prior_count[:, target] = prior_count[:, source]
    guess_count[:, target] = guess_count[:, source]
    guess_total[:, target] = guess_total[:, source]
    slip_count[:, target] = slip_count[:, source]
    slip_total[:, target] = slip_total[:, source]
    learn_count[target] = learn_count[source]
    learn_total[target] = learn_total[source]
    forget_count[target] = forget_count[source]
    forget_total[target] = forget_total[source]


@njit(parallel=True, cache=True)
def em_fit(
    sequence_start: np.ndarray,
    observation_emission: np.ndarray,
    observation_correct: np.ndarray,
    sequence_weight: np.ndarray,
    sequence_class: np.ndarray,
    skill_sequence_start: np.ndarray,
    emission_start: np.ndarray,
    prior: np.ndarray,
    learn: np.ndarray,
    forget: np.ndarray,
    guess: np.ndarray,
    slip: np.ndarray,
    fit_forget: bool,
    max_iter: int,
    tol: float,
    max_guess: float,
    max_slip: float,
    task_skill: np.ndarray,
    bin_start: np.ndarray,
    loglik: np.ndarray,
    iterations: np.ndarray,
) -> None:
    """Run EM for every restart of the skills in ``task_skill``, in place on the parameter arrays.

    Parameters are (R, K, C) ``prior``, (R, K) ``learn``/``forget``, (R, E)
    ``guess``/``slip`` (E emission classes grouped by skill: skill k owns
    ``emission_start[k]:emission_start[k + 1]``). Skills are pre-assigned to
    ``len(bin_start) - 1`` bins of similar work; each bin runs on one thread, so
    the result does not depend on scheduling. Writes (R, K) ``loglik`` and
    ``iterations``.
    """
    max_length = 1
    for sequence in range(len(sequence_start) - 1):
        max_length = max(max_length, sequence_start[sequence + 1] - sequence_start[sequence])
    for bin_index in prange(len(bin_start) - 1):
        for task in range(bin_start[bin_index], bin_start[bin_index + 1]):
            _em_skill(
                task_skill[task],
                sequence_start,
                observation_emission,
                observation_correct,
                sequence_weight,
                sequence_class,
                skill_sequence_start,
                emission_start,
                prior,
                learn,
                forget,
                guess,
                slip,
                fit_forget,
                max_iter,
                tol,
                max_guess,
                max_slip,
                loglik,
                iterations,
                max_length,
            )


@njit(parallel=True, cache=True)
def filter_sequences(
    sequence_start: np.ndarray,
    observation_emission: np.ndarray,
    observation_correct: np.ndarray,
    sequence_skill: np.ndarray,
    sequence_class: np.ndarray,
    prior: np.ndarray,
    learn: np.ndarray,
    forget: np.ndarray,
    guess: np.ndarray,
    slip: np.ndarray,
    predicted: np.ndarray,
    final: np.ndarray,
) -> None:
    """The BKT filter over every sequence.

    ``prior`` is (K, C); ``learn``/``forget`` (K,); ``guess``/``slip`` (E,).
    Writes ``predicted`` (n_observations,): P(correct) before each answer, and
    ``final`` (n_sequences,): P(known) after the last answer's posterior and transition.
    """
    for sequence in prange(len(sequence_start) - 1):
        skill = sequence_skill[sequence]
        to_learn = learn[skill]
        to_forget = forget[skill]
        known = prior[skill, sequence_class[sequence]]
        for row in range(sequence_start[sequence], sequence_start[sequence + 1]):
            emission = observation_emission[row]
            correct = observation_correct[row]
            g = guess[emission]
            s = slip[emission]
            predicted[row] = known * (1.0 - s) + (1.0 - known) * g
            joint_known = known * (correct * (1.0 - s) + (1.0 - correct) * s)
            evidence = joint_known + (1.0 - known) * (correct * g + (1.0 - correct) * (1.0 - g))
            posterior = joint_known / evidence
            known = posterior * (1.0 - to_forget) + (1.0 - posterior) * to_learn
        final[sequence] = known


@njit(cache=True)
def sequence_hashes(
    sequence_start: np.ndarray,
    observation_emission: np.ndarray,
    observation_correct: np.ndarray,
    sequence_skill: np.ndarray,
    sequence_class: np.ndarray,
) -> np.ndarray:
    """A 64-bit hash per sequence of (skill, class, emissions, answers); equal sequences hash equal."""
    n_sequence = len(sequence_start) - 1
    hashes = np.empty(n_sequence, dtype=np.uint64)
    multiplier = np.uint64(1099511628211)
    for sequence in range(n_sequence):
        value = np.uint64(14695981039346656037)
        value = (value ^ np.uint64(sequence_skill[sequence] + 1)) * multiplier
        value = (value ^ np.uint64(sequence_class[sequence] + 1)) * multiplier
        for row in range(sequence_start[sequence], sequence_start[sequence + 1]):
            value = (value ^ np.uint64(observation_emission[row] + 7)) * multiplier
            # Answers are quantised to 1e-6 for hashing only; equality is checked exactly.
            value = (value ^ np.uint64(np.int64(observation_correct[row] * 1e6) + 3)) * multiplier
        hashes[sequence] = value
    return hashes


@njit(cache=True)
def _same_sequence(
    first: int,
    second: int,
    sequence_start: np.ndarray,
    observation_emission: np.ndarray,
    observation_correct: np.ndarray,
) -> bool:
    length = sequence_start[first + 1] - sequence_start[first]
    if length != sequence_start[second + 1] - sequence_start[second]:
        return False
    for offset in range(length):
        a = sequence_start[first] + offset
        b = sequence_start[second] + offset
        if observation_emission[a] != observation_emission[b] or observation_correct[a] != observation_correct[b]:
            return False
    return True


@njit(cache=True)
def deduplicate(
    order: np.ndarray,
    hashes: np.ndarray,
    sequence_start: np.ndarray,
    observation_emission: np.ndarray,
    observation_correct: np.ndarray,
    sequence_skill: np.ndarray,
    sequence_class: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Merge identical sequences; ``order`` sorts sequences by (skill, hash).

    Returns (representative (U,), weight (U,) float64) in skill order: the first
    sequence of each group of identical ones and how many it stands for. Hash
    collisions are caught by an exact comparison and kept apart.
    """
    n = len(order)
    representative = np.empty(n, dtype=np.int64)
    weight = np.empty(n, dtype=np.float64)
    n_unique = 0
    run_start = 0
    position = 0
    while position < n:
        sequence = order[position]
        merged = False
        if (
            position > 0
            and hashes[sequence] == hashes[order[position - 1]]
            and sequence_skill[sequence] == sequence_skill[order[position - 1]]
        ):
            # Compare with the representatives of this hash run (almost always one).
            for candidate in range(run_start, n_unique):
                other = representative[candidate]
                if sequence_class[other] == sequence_class[sequence] and _same_sequence(
                    other, sequence, sequence_start, observation_emission, observation_correct
                ):
                    weight[candidate] += 1.0
                    merged = True
                    break
        else:
            run_start = n_unique
        if not merged:
            representative[n_unique] = sequence
            weight[n_unique] = 1.0
            n_unique += 1
        position += 1
    return representative[:n_unique], weight[:n_unique]


@njit(cache=True)
def gather(
    representative: np.ndarray,
    sequence_start: np.ndarray,
    observation_emission: np.ndarray,
    observation_correct: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The observations of the chosen sequences, contiguous: (start (U+1,), emission, correct)."""
    n = len(representative)
    start = np.empty(n + 1, dtype=np.int64)
    start[0] = 0
    for index in range(n):
        sequence = representative[index]
        start[index + 1] = start[index] + sequence_start[sequence + 1] - sequence_start[sequence]
    emission = np.empty(start[n], dtype=np.int32)
    correct = np.empty(start[n], dtype=np.float64)
    for index in range(n):
        sequence = representative[index]
        source = sequence_start[sequence]
        for offset in range(start[index + 1] - start[index]):
            emission[start[index] + offset] = observation_emission[source + offset]
            correct[start[index] + offset] = observation_correct[source + offset]
    return start, emission, correct


@njit(cache=True)
def expand(
    item: np.ndarray,
    learner: np.ndarray,
    correct: np.ndarray,
    row_class: np.ndarray,
    item_start: np.ndarray,
    pair_skill: np.ndarray,
    n_skills: int,
) -> tuple[np.ndarray, ...]:
    """Rows -> observations grouped by skill, then learner, then time (a stable counting sort).

    Rows must be grouped by learner and time-ordered inside a learner. Returns
    observation arrays (M,) ``row``, ``pair``, ``skill``, ``correct`` and sequence
    arrays ``sequence_start`` (S+1,), ``sequence_skill``, ``sequence_learner``,
    ``sequence_class`` (S,).
    """
    n_rows = len(item)
    count = np.zeros(n_skills + 1, dtype=np.int64)
    for index in range(n_rows):
        for pair in range(item_start[item[index]], item_start[item[index] + 1]):
            count[pair_skill[pair] + 1] += 1
    for skill in range(n_skills):
        count[skill + 1] += count[skill]
    total = count[n_skills]
    cursor = count[:n_skills].copy()
    out_row = np.empty(total, dtype=np.int64)
    out_pair = np.empty(total, dtype=np.int64)
    for index in range(n_rows):
        for pair in range(item_start[item[index]], item_start[item[index] + 1]):
            skill = pair_skill[pair]
            out_row[cursor[skill]] = index
            out_pair[cursor[skill]] = pair
            cursor[skill] += 1
    out_skill = np.empty(total, dtype=np.int64)
    out_correct = np.empty(total, dtype=np.float64)
    n_sequence = 0
    for position in range(total):
        out_skill[position] = pair_skill[out_pair[position]]
        out_correct[position] = correct[out_row[position]]
        if (
            position == 0
            or out_skill[position] != out_skill[position - 1]
            or learner[out_row[position]] != learner[out_row[position - 1]]
        ):
            n_sequence += 1
    sequence_start = np.empty(n_sequence + 1, dtype=np.int64)
    sequence_skill = np.empty(n_sequence, dtype=np.int64)
    sequence_learner = np.empty(n_sequence, dtype=np.int64)
    sequence_class = np.empty(n_sequence, dtype=np.int64)
    sequence = 0
    for position in range(total):
        if (
            position == 0
            or out_skill[position] != out_skill[position - 1]
            or learner[out_row[position]] != learner[out_row[position - 1]]
        ):
            sequence_start[sequence] = position
            sequence_skill[sequence] = out_skill[position]
            sequence_learner[sequence] = learner[out_row[position]]
            sequence_class[sequence] = row_class[out_row[position]]
            sequence += 1
    sequence_start[n_sequence] = total
    return (out_row, out_pair, out_skill, out_correct, sequence_start, sequence_skill, sequence_learner, sequence_class)
