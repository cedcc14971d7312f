"""Stored mastery and trace against a replay of each learner's stored answers (lost updates show here).

    DATABASE_URL=... python bench/mastery_check.py COURSE [LEARNER ...]   (no learner: every learner)

Prints JSON: learners checked, how many differ (stored trace or Mastery rows off by more than 1e-6
in P(known) from a replay under the active fit), the largest difference and a few of those learners.
bench/load.py runs it after a contended run; it works on any database the settings reach.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402

from bench.common import emit  # noqa: E402
from curriculum.services import course_get  # noqa: E402
from tracing.estimators.base import LearnerState  # noqa: E402
from tracing.models import LearnerTrace, Mastery  # noqa: E402
from tracing.services import _replay, course_model  # noqa: E402
from tutor.models import Learner  # noqa: E402

TOLERANCE = 1e-6


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    course = course_get(slug=sys.argv[1])
    learners = Learner.objects.filter(course=course).order_by("id")
    if len(sys.argv) > 2:
        learners = learners.filter(external_id__in=sys.argv[2:])
    model = course_model(course)
    skill_pk = dict(zip(model.vocabulary.skill_ids, model.vocabulary.skill_pk))
    worst, differing = 0.0, []
    checked = 0
    for learner in learners:
        checked += 1
        expected = np.asarray(_replay(model, learner).mastery, dtype=np.float64)
        stored = dict(Mastery.objects.filter(learner=learner).values_list("skill_id", "probability"))
        rows = np.array([stored.get(skill_pk[skill], np.nan) for skill in model.estimator.skill_ids])
        gaps = [np.nanmax(np.abs(rows - expected)) if not np.isnan(rows).all() else 1.0]
        if model.fit is not None:
            trace = LearnerTrace.objects.filter(learner=learner, fit=model.fit).values_list("state", flat=True).first()
            if trace is not None:
                gaps.append(float(np.max(np.abs(np.asarray(LearnerState.from_json(trace).mastery) - expected))))
        gap = max(gaps)
        worst = max(worst, gap)
        if gap > TOLERANCE:
            differing.append(learner.external_id)
    emit(
        {
            "course": course.slug,
            "fit": model.fit.pk if model.fit else None,
            "learners": checked,
            "differing": len(differing),
            "max_abs_difference": round(worst, 6),
            "examples": differing[:5],
        }
    )


if __name__ == "__main__":
    main()
