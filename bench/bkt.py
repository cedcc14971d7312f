"""BKT against pyBKT 1.4.3 (its C++ build) on the DKVMN train -> test files.

    .venv/bin/python bench/bkt.py [--repeats 3] [--datasets assist2009_updated assist2015]

Prints JSON: per dataset and variant (standard BKT, BKT + forgets) the test
AUC / RMSE, warm fit seconds (median of ``--repeats`` fits after a first one),
their ratio ours / pyBKT, and each process's peak memory (VmHWM); plus
our one-off cold cost (numba compile with an empty cache, and the load of a
warm cache) measured in fresh processes.

Both sides fit the same rows: the parent loads the files once with
``tracing.formats`` and hands the train/test arrays (npz) to two child
processes, ours (the project virtualenv) and pyBKT (``.bench/pybkt-venv``, made
by ``bench/setup_pybkt.sh``; pyBKT does not import with scikit-learn >= 1.8).
pyBKT gets a DataFrame with user_id, skill_name, correct, order_id built before
its clock starts; the conversion pyBKT does inside ``Model.fit`` is timed.
pyBKT runs with its defaults (5 restarts, parallel=True); ours with 5 restarts.
The child processes use only the standard library and numpy at import, so this
file also serves as their entry point.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYBKT_PYTHON = ROOT / ".bench" / "pybkt-venv" / "bin" / "python"
# The children import tracing (ours) or nothing of it (pyBKT); both run from the repository root.
sys.path.insert(0, str(ROOT))
VARIANTS = {"bkt": {}, "bkt+forgets": {"forgets": True}}


def datasets_folder() -> Path:
    return Path(os.environ.get("KT_DATASETS", ROOT.parent / "shared" / "datasets"))


def peak_memory_mib() -> float:
    """Peak resident memory of this process since its exec (VmHWM).

    ru_maxrss would be no good here: Linux carries the parent's resident size
    at fork into the child's ru_maxrss.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# Child: pyBKT ------------------------------------------------------------------------


def run_pybkt(arrays: Path, variant: str, repeats: int, seed: int) -> dict:
    import numpy as np
    import pandas as pd
    import pyBKT.fit.E_step as e_step
    from pyBKT.models import Model

    if not e_step.__file__.endswith(".so"):
        raise SystemExit(f"pyBKT's E-step is not the C++ build ({e_step.__file__}); run bench/setup_pybkt.sh")
    data = np.load(arrays)

    def frame(prefix: str) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "user_id": data[f"{prefix}_learner"],
                "skill_name": data[f"{prefix}_skill"].astype(str),
                "correct": data[f"{prefix}_correct"].astype(int),
                "order_id": np.arange(len(data[f"{prefix}_learner"])),
            }
        )

    train, test = frame("train"), frame("test")
    times, cpu_times = [], []
    model: Any = None
    for _ in range(repeats + 1):
        model = Model(seed=seed, num_fits=5)
        start, cpu = time.perf_counter(), time.process_time()
        model.fit(data=train, **VARIANTS[variant])
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu)
    predicted = model.predict(data=test).sort_values("order_id")["correct_predictions"].to_numpy()
    return {
        "fit_seconds": times,
        "fit_cpu_seconds": cpu_times,
        "predicted": predicted.tolist(),
        "peak_memory_mib": peak_memory_mib(),
        "e_step": Path(e_step.__file__).name,
    }


# Child: ours ---------------------------------------------------------------------------


def _datasets(arrays: Path):
    import numpy as np

    from tracing.data import Dataset

    data = np.load(arrays)
    n_skills = int(data["n_skills"])
    ids = tuple(str(s) for s in range(n_skills))
    q_matrix = np.eye(n_skills, dtype=bool)
    result = []
    for prefix in ("train", "test"):
        learner = data[f"{prefix}_learner"].astype(np.int32)
        n_learners = int(learner.max()) + 1 if len(learner) else 0
        result.append(
            Dataset(
                learner=learner,
                item=data[f"{prefix}_skill"].astype(np.int32),
                correct=data[f"{prefix}_correct"].astype(np.float32),
                timestamp=np.arange(len(learner), dtype=np.float64),
                q_matrix=q_matrix,
                item_ids=ids,
                skill_ids=ids,
                learner_ids=tuple(map(str, range(n_learners))),
                has_time=False,
            )
        )
    return result


def run_ours(arrays: Path, variant: str, repeats: int, seed: int) -> dict:
    import numpy  # noqa: F401  (every estimator needs numpy; the cold cost is numba's)

    start = time.perf_counter()
    from tracing.estimators.bkt import BKT

    import_seconds = time.perf_counter() - start
    train, test = _datasets(arrays)
    times, cpu_times = [], []
    model: Any = None
    for _ in range(repeats + 1):
        model = BKT(restarts=5, **VARIANTS[variant])
        start, cpu = time.perf_counter(), time.process_time()
        model.fit(train, seed=seed)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu)
    return {
        "fit_seconds": times,
        "fit_cpu_seconds": cpu_times,
        "predicted": model.predict_proba(test).tolist(),
        "peak_memory_mib": peak_memory_mib(),
        "import_seconds": import_seconds,
        "fit_info": model.fit_info,
    }


# Parent ------------------------------------------------------------------------------------


def child(
    python: Path, mode: str, arrays: Path, variant: str, repeats: int, seed: int, env: dict | None = None
) -> dict:
    command = [str(python), str(Path(__file__).resolve()), mode, str(arrays), variant, str(repeats), str(seed)]
    # Idle OpenMP threads sleep rather than spin (both sides): on a shared machine
    # spinning would bill pyBKT for CPU it only waits with.
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE", **(env or {})},
    )
    if result.returncode:
        raise SystemExit(f"{mode} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.splitlines()[-1])


def export(name: str, folder: Path, target: Path) -> dict:
    import numpy as np

    from tracing.formats import load_dataset

    base = folder / name
    train, test = load_dataset(base / f"{name}_train.csv", base / f"{name}_test.csv", format="dkvmn")
    # DKVMN items are their own skills (identity Q-matrix), so the item index is the skill index.
    np.savez(
        target,
        n_skills=train.n_skills,
        train_learner=train.learner,
        train_skill=train.item,
        train_correct=train.correct,
        test_learner=test.learner,
        test_skill=test.item,
        test_correct=test.correct,
    )
    return {
        "train_rows": train.n_rows,
        "test_rows": test.n_rows,
        "skills": train.n_skills,
        "train_learners": train.n_learners,
    }


def cold_cost(arrays: Path, seed: int) -> dict:
    """Import + first-fit overhead in fresh processes: with an empty numba cache, then with it warm."""
    with tempfile.TemporaryDirectory() as cache:
        env = {"NUMBA_CACHE_DIR": cache}
        compile_run = child(Path(sys.executable), "--ours", arrays, "bkt", 1, seed, env)
        cached_run = child(Path(sys.executable), "--ours", arrays, "bkt", 1, seed, env)

    def overhead(run: dict) -> float:
        return run["import_seconds"] + run["fit_seconds"][0] - run["fit_seconds"][1]

    return {
        "compile_seconds": round(overhead(compile_run), 3),
        "cached_seconds": round(overhead(cached_run), 3),
        "import_seconds_cached": round(cached_run["import_seconds"], 3),
        "note": "import of tracing.estimators.bkt (numba) + first fit - warm fit, numpy already imported",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["assist2009_updated", "assist2015"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import numpy as np

    from tracing.evaluation import metrics

    folder = datasets_folder()
    missing = [n for n in args.datasets if not (folder / n / f"{n}_train.csv").exists()]
    if missing:
        raise SystemExit(f"datasets not found under {folder}: {', '.join(missing)} (set KT_DATASETS)")
    if not PYBKT_PYTHON.exists():
        raise SystemExit(f"{PYBKT_PYTHON} is missing: run bench/setup_pybkt.sh first")

    report: dict = {
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()[0]},
        "repeats": args.repeats,
        "datasets": {},
    }
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.datasets:
            arrays = Path(scratch) / f"{name}.npz"
            entry: dict = {"rows": export(name, folder, arrays)}
            answers = np.load(arrays)["test_correct"]
            if name == args.datasets[0]:
                report["cold_start"] = cold_cost(arrays, args.seed)
            for variant in VARIANTS:
                runs = {
                    "ours": child(Path(sys.executable), "--ours", arrays, variant, args.repeats, args.seed),
                    "pybkt": child(PYBKT_PYTHON, "--pybkt", arrays, variant, args.repeats, args.seed),
                }
                row: dict = {}
                for side, run in runs.items():
                    scores = metrics(answers, np.asarray(run["predicted"]))
                    row[side] = {
                        "auc": round(scores["auc"], 4),
                        "rmse": round(scores["rmse"], 4),
                        "fit_seconds": round(statistics.median(run["fit_seconds"][1:]), 3),
                        "fit_seconds_all": [round(t, 3) for t in run["fit_seconds"]],
                        "fit_cpu_seconds": round(statistics.median(run["fit_cpu_seconds"][1:]), 3),
                        "peak_memory_mib": round(run["peak_memory_mib"], 1),
                    }
                row["ours"]["fit_info"] = runs["ours"]["fit_info"]
                row["time_ratio_ours_over_pybkt"] = round(row["ours"]["fit_seconds"] / row["pybkt"]["fit_seconds"], 3)
                row["cpu_ratio_ours_over_pybkt"] = round(
                    row["ours"]["fit_cpu_seconds"] / row["pybkt"]["fit_cpu_seconds"], 3
                )
                row["auc_difference_ours_minus_pybkt"] = round(row["ours"]["auc"] - row["pybkt"]["auc"], 4)
                entry[variant] = row
            report["datasets"][name] = entry
    report["machine"]["load_average_at_end"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("--ours", "--pybkt"):
        mode, arrays, variant, repeats, seed = sys.argv[1:6]
        run = run_ours if mode == "--ours" else run_pybkt
        print(json.dumps(run(Path(arrays), variant, int(repeats), int(seed))))
    else:
        main()
