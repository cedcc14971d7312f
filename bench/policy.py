"""Does the next-item policy speed up learning? Simulated learners, tutored through the real services.

Usage: python bench/policy.py [--learners 500] [--workers 2] [--model bkt] [--params '{}'] [--pilot 200]
                              [--simulator classic|sittings] [--seeds evaluation|warmup] [--policy '{...}']

The demo course (curriculum/demo/arithmetic.json) is imported with
``curriculum_import`` into a temporary SQLite database. A pilot cohort taught
in textbook order gives the course its data, and the course's model is fitted
on it through ``fit_start`` (the Celery task runs in-process), as a course
that ran before going adaptive would be. Then the same evaluation cohort
(same seeds, hidden knowledge from curriculum/simulation.py) is tutored by
three policies, every answer stored with ``tutor.actions.answers_record``:

- random: uniform over the items, never the same twice in a row;
- fixed: the textbook sequence, items grouped by skill in topological order
  (repeated from the start when it runs out);
- mastery: the standard baseline, BKT mastery learning in topological order:
  each skill is practised (its items in turn) until the course model's
  P(known) >= 0.95, then the next skill;
- ours: ``tutor.actions.next_item_choose`` before every answer. When it
  declares the goals done the learner stops; one who does not truly know
  them all comes back the next day (at most ``RETURNS`` times), when the
  policy's check of skills not practised for a day may catch what they forgot.
  When it has nothing to offer (every question left waits out a wrong answer)
  the learner comes back after the course's ``retry_gap_minutes``;
- oracle: sees the true knowledge: always an item of the first skill in
  topological order that is not known and whose prerequisites are known
  (ready to learn); when every skill is known, the skill practised longest ago.

Learners come from ``--simulator``: ``classic`` (curriculum/simulation.py) or
``sittings`` (curriculum/simulation_sittings.py: soft prerequisite gating,
forgetting only between sittings, per-item guess and slip). ``--seeds warmup``
draws other learners (seeds from 50,000) for choosing settings; report on
``evaluation`` (seeds from 0). ``--policy`` sets the course's policy JSON.

Per learner: items until every goal skill is truly known at once (censored
at --max-items, or when the policy declares the learner done while they are
not and do not come back), the post-test after 100 items (fraction of the goal skills truly
known), and of the first 100 questions the share asked on a skill the learner already knew
(every skill of the item known) and on one ready to learn (not known, prerequisites known).
Prints JSON: median and 90th percentile of items to mastery, mean post-test, those shares,
and the time spent in each service call.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, emit, peak_rss_mb  # noqa: E402
from curriculum.simulation import SimulatedCourse, SimulatedLearner, random_order, topological_order  # noqa: E402
from curriculum.simulation_sittings import SittingsCourse, SittingsLearner  # noqa: E402

DOCUMENT = REPO / "curriculum" / "demo" / "arithmetic.json"
POLICIES = ("random", "fixed", "mastery", "ours", "oracle")
SIMULATORS: dict[str, tuple[Any, Any]] = {
    "classic": (SimulatedCourse, SimulatedLearner),
    "sittings": (SittingsCourse, SittingsLearner),
}
WARMUP_SEED = 50_000
MASTERY_THRESHOLD = 0.95
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
PILOT_SEED = 1_000_000
EVALUATION_SEED = 0
RETURNS = 3
WAITS = 50
"""Times a learner told "nothing to practise right now" comes back after the wrong-answer gap."""


def django_setup(folder: Path) -> None:
    """Configure Django on a fresh SQLite database in ``folder`` with in-process tasks; migrate."""
    os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'bench.sqlite3'}"
    os.environ["TUTOR_ARTIFACT_ROOT"] = str(folder / "artifacts")
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tutor.settings"
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def course_prepare(
    *,
    document: dict,
    slug: str,
    model: str | None,
    params: dict,
    pilot: int,
    pilot_items: int,
    simulated: SimulatedCourse,
    learner_class: Any = SimulatedLearner,
    policy: dict | None = None,
) -> Any:
    """Create and import the course; teach a pilot cohort in textbook order and fit ``model`` on it."""
    from curriculum.services import course_create, curriculum_import
    from tutor.actions import fit_start

    course = course_create(slug=slug, name=document.get("course", {}).get("name", slug))
    curriculum_import(course=course, document=document)
    if policy:
        course.policy = policy
        course.save(update_fields=["policy"])
    if pilot and model:
        sequence = topological_order(simulated)
        for index in range(pilot):
            learner = learner_class(simulated, seed=PILOT_SEED + index)
            rows = []
            for step in range(pilot_items):
                item = sequence[step % len(sequence)]
                correct, moment = learner.answer(item)
                rows.append(_row(f"pilot-{index}", step, simulated.item_ids[item], correct, moment))
            _record(course, rows, update_mastery=False)
        fit = fit_start(course=course, kind=model, params=params, inline=True)
        fit.refresh_from_db()
        if fit.status != "succeeded":
            sys.exit(f"the pilot fit of {model} did not succeed: {fit.status} {fit.error}")
    return course


def _row(learner: str, step: int, item: str, correct: float, moment: float) -> dict[str, Any]:
    return {
        "id": f"{learner}/{step}",
        "learner": learner,
        "item": item,
        "correct": correct,
        "timestamp": (START + timedelta(seconds=moment)).isoformat(),
    }


def _record(course: Any, rows: list[dict[str, Any]], *, update_mastery: bool = True) -> Any:
    from tutor.actions import answers_record
    from tutor.services import interaction_record

    # The baselines keep their own mastery: their answers are stored without the online update.
    return answers_record(course=course, rows=rows) if update_mastery else interaction_record(course=course, rows=rows)


def _retry_gap_days(course: Any) -> float:
    from curriculum.services import course_policy

    # getattr: the bench also drives the code from before the gap existed, for the before/after figures.
    return max(getattr(course_policy(course=course), "retry_gap_minutes", 10.0), 1.0) / 1440.0


def _oracle(simulated: Any, learner: Any, seen: dict[int, int]) -> int:
    """The item an oracle that sees the true state would ask: the first skill in topological order that is
    ready to learn, its item seen least (then first listed); with everything known, the skill asked longest ago."""
    graph = simulated.graph
    order = [graph.index[name] for name in graph.topological_order()]
    items_of = simulated.skill_items()
    ready = [
        skill
        for skill in order
        if not learner.known[skill]
        and all(learner.known[parent] for parent in simulated.parents[skill])
        and items_of[skill]
    ]
    if ready:
        pool = items_of[ready[0]]
    else:
        last = {skill: max((seen.get(item, -1) for item in items_of[skill]), default=-1) for skill in order}
        pool = items_of[min((skill for skill in order if items_of[skill]), key=lambda skill: last[skill])]
    return min(pool, key=lambda item: (item in seen, seen.get(item, -1)))


def learner_tutor(
    *,
    course: Any,
    simulated: SimulatedCourse,
    policy: str,
    seed: int,
    max_items: int,
    posttest_at: int,
    goals: Sequence[int],
    timings: dict[str, float],
    learner_class: Any = SimulatedLearner,
) -> dict[str, Any]:
    """Tutor one simulated learner with ``policy``; their outcome and the steps taken."""
    from tutor.actions import next_item_choose
    from tutor.services import learner_get_or_create

    learner = learner_class(simulated, seed=seed)
    name = f"{policy}-{seed}"
    record = learner_get_or_create(course=course, external_id=name)
    item_position = {item: index for index, item in enumerate(simulated.item_ids)}
    sequence = topological_order(simulated)
    draw = random_order(simulated, seed=seed)
    mastered_at = 0 if learner.knows_all(goals) else None
    posttest = None
    declared_done = False
    returns = waits = 0
    retry_gap_days = _retry_gap_days(course)
    reasons: dict[str, int] = {}
    pending: list[dict[str, Any]] = []
    seen: dict[int, int] = {}
    asked_known = asked_ready = 0
    # The mastery-learning baseline: the course model's P(known), skill by skill in topological order.
    order = [simulated.graph.index[name] for name in simulated.graph.topological_order()]
    items_of = simulated.skill_items()
    model_mastery: dict[str, float] = {}
    if policy == "mastery":
        model_mastery = _prior_mastery(course, record)
    step = 0
    while step < max_items and (mastered_at is None or step < posttest_at):
        if policy == "ours":
            started = time.perf_counter()
            choice = next_item_choose(
                course=course, learner=record, now=START + timedelta(seconds=learner.time_of(step))
            )
            timings["next_item_choose_s"] += time.perf_counter() - started
            timings["next_item_choose_calls"] += 1
            if choice.done and mastered_at is None and returns < RETURNS:
                learner.rest(1.0)
                returns += 1
                continue
            if choice.item is None and not choice.done and waits < WAITS:
                # Every question left is waiting out a wrong answer: the learner comes back after the gap.
                learner.rest(retry_gap_days)
                waits += 1
                continue
            if choice.done or choice.item is None:
                declared_done = choice.done
                break
            reasons[choice.why] = reasons.get(choice.why, 0) + 1
            item = item_position[choice.item]
        elif policy == "fixed":
            item = sequence[step % len(sequence)]
        elif policy == "mastery":
            names = simulated.graph.skills
            todo = [
                skill for skill in order if items_of[skill] and model_mastery.get(names[skill], 0.0) < MASTERY_THRESHOLD
            ]
            skill = todo[0] if todo else order[step % len(order)]
            item = min(items_of[skill], key=lambda item: (item in seen, seen.get(item, -1)))
        elif policy == "oracle":
            item = _oracle(simulated, learner, seen)
        else:
            item = draw(step)
        if step < posttest_at:
            skills = simulated.item_skills[item]
            if all(learner.known[skill] for skill in skills):
                asked_known += 1
            elif any(
                not learner.known[skill] and all(learner.known[parent] for parent in simulated.parents[skill])
                for skill in skills
            ):
                asked_ready += 1
        seen[item] = step
        correct, moment = learner.answer(item)
        pending.append(_row(name, step, simulated.item_ids[item], correct, moment))
        step += 1
        # Baselines read nothing back, so their answers may be stored in small batches.
        if policy in ("ours", "mastery") or len(pending) >= 25:
            started = time.perf_counter()
            result = _record(course, pending)
            timings["interaction_record_s"] += time.perf_counter() - started
            timings["interaction_record_calls"] += 1
            pending = []
            if policy == "mastery":
                model_mastery.update(result.mastery.get(name, {}))
        if mastered_at is None and learner.knows_all(goals):
            mastered_at = step
        if step == posttest_at:
            posttest = learner.post_test(goals)
    if pending:
        _record(course, pending)
    if posttest is None:
        posttest = learner.post_test(goals)  # stopped early: tested where they stopped
    asked = min(step, posttest_at)
    return {
        "items_to_mastery": mastered_at,
        "posttest": posttest,
        "items": step,
        "declared_done_unmastered": declared_done and not learner.knows_all(goals),
        "returns": returns,
        "reasons": reasons,
        "asked": asked,
        "asked_known": asked_known,
        "asked_ready": asked_ready,
        "waits": waits,
    }


def _prior_mastery(course: Any, record: Any) -> dict[str, float]:
    """The course model's P(known) per skill for a learner who has answered nothing."""
    from tracing.services import course_model

    model = course_model(course)
    state = model.estimator.initial_state()
    return {skill: float(state.mastery[index]) for skill, index in model.skill_index.items()}


def cohort_run(
    *,
    course: Any,
    simulated: SimulatedCourse,
    policies: Sequence[str],
    seeds: Sequence[int],
    max_items: int,
    posttest_at: int = 100,
    learner_class: Any = SimulatedLearner,
) -> dict[str, Any]:
    """Tutor every seed's learner with every policy; per policy the outcomes and service timings."""
    goals = list(range(simulated.n_skills))
    out: dict[str, Any] = {}
    for policy in policies:
        timings = {
            "next_item_choose_s": 0.0,
            "next_item_choose_calls": 0,
            "interaction_record_s": 0.0,
            "interaction_record_calls": 0,
        }
        outcomes = [
            learner_tutor(
                course=course,
                simulated=simulated,
                policy=policy,
                seed=seed,
                max_items=max_items,
                posttest_at=posttest_at,
                goals=goals,
                timings=timings,
                learner_class=learner_class,
            )
            for seed in seeds
        ]
        out[policy] = {"outcomes": outcomes, "timings": timings}
    return out


def summarise(outcomes: list[dict[str, Any]], max_items: int) -> dict[str, Any]:
    """Median and 90th percentile of items to mastery (censored learners count as never), mean post-test."""
    items = np.array([o["items_to_mastery"] if o["items_to_mastery"] is not None else np.inf for o in outcomes])

    def quantile(q: float) -> float | None:
        value = float(np.quantile(items, q, method="higher"))
        return value if np.isfinite(value) else None

    reasons: dict[str, int] = {}
    for outcome in outcomes:
        for why, count in outcome["reasons"].items():
            reasons[why] = reasons.get(why, 0) + count
    return {
        "learners": len(outcomes),
        "items_to_mastery_median": quantile(0.5),
        "items_to_mastery_p90": quantile(0.9),
        "mastered_within_cap": int(np.isfinite(items).sum()),
        "declared_done_unmastered": int(sum(o["declared_done_unmastered"] for o in outcomes)),
        "came_back_after_done": int(sum(o.get("returns", 0) > 0 for o in outcomes)),
        "posttest_after_100_mean": round(float(np.mean([o["posttest"] for o in outcomes])), 4),
        "share_asked_on_known_skills": round(
            sum(o.get("asked_known", 0) for o in outcomes) / max(sum(o.get("asked", 0) for o in outcomes), 1), 4
        ),
        "share_asked_on_ready_skills": round(
            sum(o.get("asked_ready", 0) for o in outcomes) / max(sum(o.get("asked", 0) for o in outcomes), 1), 4
        ),
        "items_to_mastery_mean_capped": round(float(np.mean(np.minimum(items, max_items))), 1),
        "reasons": reasons,
        "cap": max_items,
    }


def _worker(job: dict[str, Any]) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="policy-bench-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    django_setup(folder)
    document = json.loads(DOCUMENT.read_text())
    course_class, learner_class = SIMULATORS[job["simulator"]]
    simulated = course_class.from_document(document, seed=0)
    started = time.perf_counter()
    course = course_prepare(
        document=document,
        slug="arithmetic",
        model=job["model"],
        params=job["params"],
        pilot=job["pilot"],
        pilot_items=job["pilot_items"],
        simulated=simulated,
        learner_class=learner_class,
        policy=job["policy"],
    )
    prepare_s = time.perf_counter() - started
    result = cohort_run(
        course=course,
        simulated=simulated,
        policies=job["policies"],
        seeds=job["seeds"],
        max_items=job["max_items"],
        learner_class=learner_class,
    )
    from tracing.models import Fit

    fit = Fit.objects.filter(course=course, active=True).first()
    result["_meta"] = {"prepare_s": prepare_s, "fit_metrics": fit.metrics if fit else None}
    shutil.rmtree(folder, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default="bkt", help="estimator kind fitted on the pilot cohort")
    parser.add_argument("--params", default="{}", help="its hyper-parameters as JSON")
    parser.add_argument("--pilot", type=int, default=200, help="pilot learners taught in textbook order")
    parser.add_argument("--pilot-items", type=int, default=150)
    parser.add_argument("--max-items", type=int, default=1000)
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--simulator", choices=sorted(SIMULATORS), default="classic")
    parser.add_argument(
        "--seeds",
        choices=("evaluation", "warmup"),
        default="evaluation",
        help="warmup: other learners, for choosing settings; report on evaluation",
    )
    parser.add_argument("--policy", default="", help="the course's policy settings as JSON (default: none set)")
    args = parser.parse_args()
    if not DOCUMENT.exists():
        sys.exit(f"{DOCUMENT} not found: the demo course is needed")
    from tracing.estimators import ESTIMATORS

    if args.model not in ESTIMATORS:
        sys.exit(f"model {args.model!r} is not registered (known: {', '.join(sorted(ESTIMATORS))})")
    policies = [p for p in args.policies.split(",") if p]
    first = WARMUP_SEED if args.seeds == "warmup" else EVALUATION_SEED
    seeds = [first + index for index in range(args.learners)]
    policy_settings = json.loads(args.policy) if args.policy else None
    workers = max(1, min(args.workers, args.learners))
    jobs = [
        {
            "model": args.model,
            "params": json.loads(args.params),
            "pilot": args.pilot,
            "pilot_items": args.pilot_items,
            "policies": policies,
            "seeds": seeds[index::workers],
            "max_items": args.max_items,
            "simulator": args.simulator,
            "policy": policy_settings,
        }
        for index in range(workers)
    ]
    started = time.perf_counter()
    if workers == 1:
        parts = [_worker(jobs[0])]
    else:
        import multiprocessing

        # Each worker owns its own SQLite file; fork before Django is set up in this process.
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_worker, jobs)
    wall = time.perf_counter() - started
    result: dict[str, Any] = {
        "bench": "policy",
        "course": "arithmetic",
        "model": args.model,
        "params": json.loads(args.params),
        "pilot_learners": args.pilot,
        "pilot_items": args.pilot_items,
        "learners": args.learners,
        "simulator": args.simulator,
        "seeds": args.seeds,
        "course_policy": policy_settings,
        "policies": {},
    }
    for policy in policies:
        outcomes = [o for part in parts for o in part[policy]["outcomes"]]
        summary = summarise(outcomes, args.max_items)
        timing: dict[str, float] = {}
        for part in parts:
            for key, value in part[policy]["timings"].items():
                timing[key] = timing.get(key, 0) + value
        for call in ("next_item_choose", "interaction_record"):
            if timing.get(f"{call}_calls"):
                summary[f"{call}_ms_mean"] = round(1000 * timing[f"{call}_s"] / timing[f"{call}_calls"], 2)
        result["policies"][policy] = summary
    if "fixed" in result["policies"] and "ours" in result["policies"]:
        fixed, ours = result["policies"]["fixed"], result["policies"]["ours"]
        if fixed["items_to_mastery_median"] and ours["items_to_mastery_median"]:
            result["ours_vs_fixed_items_median"] = round(
                1 - ours["items_to_mastery_median"] / fixed["items_to_mastery_median"], 4
            )
        if fixed["items_to_mastery_p90"] and ours["items_to_mastery_p90"]:
            result["ours_vs_fixed_items_p90"] = round(
                1 - ours["items_to_mastery_p90"] / fixed["items_to_mastery_p90"], 4
            )
        result["ours_minus_fixed_posttest"] = round(
            ours["posttest_after_100_mean"] - fixed["posttest_after_100_mean"], 4
        )
    result["fit_metrics"] = parts[0]["_meta"]["fit_metrics"]
    result["prepare_s"] = round(parts[0]["_meta"]["prepare_s"], 2)
    result["wall_s"] = round(wall, 1)
    result["workers"] = workers
    result["peak_rss_mb"] = peak_rss_mb(children=workers > 1)
    emit(result)


if __name__ == "__main__":
    main()
