"""Deep knowledge tracing on the DKVMN splits: our DKT, CAKT and SAKT beside BKT and pyKT's DKT.

Each (dataset, model) is fitted in its own subprocess (clean peak memory, and the
threads setting applies to it alone) on the training file, with early stopping on
a carve-out of the training learners (``tracing.estimators.deep.validation_split``,
the same learners for pyKT), and evaluated once on the test file. pyKT runs from
its own virtualenv (``bench/setup_pykt.sh``); its loader builds ``torch.cuda``
tensors, so the worker rebinds that module's ``LongTensor``/``FloatTensor`` to the
CPU types at run time.

Usage (JSON on stdout; ``--out`` also writes it to a file):

    .venv/bin/python bench/deep.py --dataset assist2009_updated --models bkt,dkt,cakt,sakt
    .venv/bin/python bench/deep.py --dataset assist2015 --models dkt --skip-pykt
    .venv/bin/python bench/deep.py --dataset assist2009_updated --models cakt --params 'cakt={"channels": 8}'

Data: ``$KT_DATASETS`` or ``<repo>/../shared/datasets``. AUC is over every test row
(``auc``); ``auc_pykt_rows`` leaves out the first row of each 200-row chunk, as
pyKT's evaluation does, but our models keep their sliding context there while pyKT restarts
it every 200 rows (and drops pieces under 3 rows): not pyKT's protocol. ``bench/models.py``
evaluates under pyKT's chunks properly (``chunked``) and keeps the protocols apart.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATASETS = ("assist2009_updated", "assist2015")
PUBLISHED = {  # DKVMN paper (Zhang et al., WWW 2017), test AUC on these exact files.
    "assist2009_updated": {"bkt": 0.63, "dkt": 0.8053, "dkvmn": 0.8157},
    "assist2015": {"bkt": 0.64, "dkt": 0.7252, "dkvmn": 0.7268},
}
PYKT_CHUNK = 200
PYKT_DKT: dict[str, Any] = {
    "emb_size": 200,
    "dropout": 0.2,
    "learning_rate": 1e-3,
    "batch_size": 256,
    "num_epochs": 200,
}


def data_root() -> Path:
    return Path(os.environ.get("KT_DATASETS", REPO.parent / "shared" / "datasets"))


def dataset_files(name: str) -> tuple[Path, Path]:
    folder = data_root() / name
    train, test = folder / f"{name}_train.csv", folder / f"{name}_test.csv"
    if not train.exists() or not test.exists():
        sys.exit(f"bench/deep.py: {train} or {test} is missing; set KT_DATASETS to the folder holding {name}/")
    return train, test


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_seconds() -> float:
    """CPU time of the worker so far: a fairer yardstick than wall time on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- our models (worker, project venv)


def run_ours(dataset: str, kind: str, params: dict, seed: int, threads: int) -> dict:
    sys.path.insert(0, str(REPO))
    import numpy as np

    from tracing.estimators import get_estimator
    from tracing.evaluation import metrics
    from tracing.formats import load_dataset

    train, test = load_dataset(*dataset_files(dataset), format="dkvmn")
    from tracing.estimators.deep import DeepEstimator

    cls = get_estimator(kind)
    if issubclass(cls, DeepEstimator):
        params = {"threads": threads, **params}
    estimator: Any = cls(**params)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    estimator.fit(train, seed=seed)
    fit_seconds, fit_cpu_seconds = time.perf_counter() - started, cpu_seconds() - cpu_started
    started = time.perf_counter()
    probability = estimator.predict_proba(test)
    predict_seconds = time.perf_counter() - started
    result = {
        "dataset": dataset,
        "model": kind,
        "params": params,
        **{key: value for key, value in metrics(test.correct, probability).items()},
    }
    position = np.arange(test.n_rows) - test.offsets[test.learner]
    pykt_rows = position % PYKT_CHUNK != 0
    result["auc_pykt_rows"] = metrics(test.correct[pykt_rows], probability[pykt_rows])["auc"]
    history = getattr(estimator, "history", None)
    if history:
        result["epochs"] = len(history)
        result["best_epoch"] = estimator.best_epoch
        result["best_valid_auc"] = max(record.get("valid_auc", float("nan")) for record in history)
        result["seconds_per_epoch"] = float(np.mean([record["seconds"] for record in history]))
        result["history"] = history
    result.update(
        fit_seconds=fit_seconds,
        predict_seconds=predict_seconds,
        peak_memory_mb=peak_memory_mb(),
        fit_cpu_seconds=fit_cpu_seconds,
    )
    return result


# ---------------------------------------------------------------- pyKT (worker, bench venv)


def write_pykt_files(dataset: str, folder: Path, seed: int, fraction: float) -> int:
    """pyKT's sequence CSVs for the same train/validation/test learners; returns the number of concepts."""
    sys.path.insert(0, str(REPO))
    from tracing.estimators.deep import validation_split
    from tracing.formats import load_dataset

    train, test = load_dataset(*dataset_files(dataset), format="dkvmn")
    _, valid = validation_split(train.n_learners, fraction, seed)
    is_valid = set(valid.tolist())
    folder.mkdir(parents=True, exist_ok=True)
    concept = train.primary_skill

    def rows(data, fold_of):
        lines = ["fold,uid,concepts,responses,selectmasks"]
        for learner, span in data.sequences():
            concepts = concept[data.item[span]].tolist()
            answers = [int(round(float(a))) for a in data.correct[span]]
            # pyKT's preprocessing: 200-row chunks, the last padded with -1, chunks under 3 rows dropped.
            for start in range(0, len(concepts), PYKT_CHUNK):
                chunk_c, chunk_r = concepts[start : start + PYKT_CHUNK], answers[start : start + PYKT_CHUNK]
                if len(chunk_c) < 3:
                    continue
                pad = PYKT_CHUNK - len(chunk_c)
                fields = [chunk_c + [-1] * pad, chunk_r + [-1] * pad, [1] * len(chunk_c) + [-1] * pad]
                lines.append(
                    f"{fold_of(learner)},{learner},"
                    + ",".join('"' + ",".join(map(str, field)) + '"' for field in fields)
                )
        return "\n".join(lines) + "\n"

    (folder / "train_valid_sequences.csv").write_text(rows(train, lambda learner: 0 if learner in is_valid else 1))
    (folder / "test_sequences.csv").write_text(rows(test, lambda learner: -1))
    return train.n_skills


def run_pykt(folder: Path, num_c: int, seed: int, threads: int) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    import pykt.datasets.data_loader as loader

    # pyKT builds torch.cuda tensors in its loader; on a CPU machine point those names at CPU types.
    loader.LongTensor, loader.FloatTensor = torch.LongTensor, torch.FloatTensor
    from pykt.models.dkt import DKT
    from pykt.models.train_model import train_model
    from sklearn import metrics as skm
    from torch.nn.functional import one_hot
    from torch.utils.data import DataLoader

    np.random.seed(seed)  # noqa: NPY002 - pyKT draws from numpy's global generator
    torch.manual_seed(seed)
    data_file = str(folder / "train_valid_sequences.csv")
    for cached in folder.glob("*.pkl"):
        cached.unlink()  # pyKT caches parsed files beside them; rebuild for every run.
    batch = PYKT_DKT["batch_size"]
    train_loader = DataLoader(loader.KTDataset(data_file, ["concepts"], {1}), batch_size=batch, shuffle=True)
    valid_loader = DataLoader(loader.KTDataset(data_file, ["concepts"], {0}), batch_size=batch, shuffle=False)
    model = DKT(num_c, PYKT_DKT["emb_size"], dropout=PYKT_DKT["dropout"])
    optimiser = torch.optim.Adam(model.parameters(), PYKT_DKT["learning_rate"])
    checkpoints = folder / "checkpoints"
    checkpoints.mkdir(exist_ok=True)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    *_, valid_auc, _, best_epoch = train_model(
        model, train_loader, valid_loader, PYKT_DKT["num_epochs"], optimiser, str(checkpoints), save_model=True
    )
    fit_seconds, fit_cpu_seconds = time.perf_counter() - started, cpu_seconds() - cpu_started
    model.load_state_dict(torch.load(checkpoints / "qid_model.ckpt", map_location="cpu"))
    model.eval()
    test_loader = DataLoader(
        loader.KTDataset(str(folder / "test_sequences.csv"), ["concepts"], {-1}), batch_size=batch, shuffle=False
    )
    truths, scores = [], []
    with torch.no_grad():
        for data in test_loader:
            y = model(data["cseqs"].long(), data["rseqs"].long())
            y = (y * one_hot(data["shft_cseqs"].long(), num_c)).sum(-1)
            truths.append(torch.masked_select(data["shft_rseqs"], data["smasks"]).numpy())
            scores.append(torch.masked_select(y, data["smasks"]).numpy())
    truth, score = np.concatenate(truths), np.concatenate(scores).astype(np.float64)
    epochs = best_epoch + 10  # pyKT stops 10 epochs after its best
    return {
        "model": "pykt_dkt",
        "params": PYKT_DKT,
        "auc": float(skm.roc_auc_score(truth, score)),
        "rmse": float(np.sqrt(np.mean((truth - score) ** 2))),
        "accuracy": float(np.mean((score >= 0.5) == (truth >= 0.5))),
        "n": int(len(truth)),
        "epochs": epochs,
        "best_epoch": int(best_epoch),
        "best_valid_auc": float(valid_auc),
        "seconds_per_epoch": fit_seconds / epochs,
        "fit_seconds": fit_seconds,
        "fit_cpu_seconds": fit_cpu_seconds,
        "peak_memory_mb": peak_memory_mb(),
    }


# ---------------------------------------------------------------- driver


def worker(command: list[str], env: dict[str, str]) -> dict:
    completed = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    if completed.returncode != 0:
        return {"error": completed.stderr[-2000:]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="all", help=f"one of {', '.join(DATASETS)} or all")
    parser.add_argument("--models", default="bkt,dkt,cakt,sakt", help="registry kinds, comma-separated")
    parser.add_argument(
        "--params", action="append", default=[], help='KIND=JSON hyper-parameters, e.g. dkt={"hidden":200}'
    )
    parser.add_argument("--skip-pykt", action="store_true")
    parser.add_argument("--pykt-python", default=str(REPO / ".bench" / "pykt" / "bin" / "python"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--worker", choices=["ours", "pykt"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--num-c", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker == "ours":
        print(
            json.dumps(
                run_ours(
                    args.dataset, args.model, json.loads(args.params[0]) if args.params else {}, args.seed, args.threads
                )
            )
        )
        return
    if args.worker == "pykt":
        print(json.dumps(run_pykt(args.folder, args.num_c, args.seed, args.threads)))
        return

    overrides = {}
    for entry in args.params:
        kind, _, text = entry.partition("=")
        overrides[kind] = json.loads(text)
    datasets = DATASETS if args.dataset == "all" else (args.dataset,)
    # PASSIVE: on a shared machine, spinning OpenMP threads wait on descheduled peers (both sides alike).
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "MKL_NUM_THREADS": str(args.threads),
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    report = {
        "threads": args.threads,
        "omp_wait_policy": "PASSIVE",
        "seed": args.seed,
        "validation_fraction": args.validation_fraction,
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "runs": [],
    }
    for dataset in datasets:
        dataset_files(dataset)
        rows = []
        for kind in [k for k in args.models.split(",") if k]:
            params = dict(overrides.get(kind, {}))
            if kind in ("dkt", "cakt", "sakt"):
                params.setdefault("validation_fraction", args.validation_fraction)
            command = [
                sys.executable,
                __file__,
                "--worker",
                "ours",
                "--dataset",
                dataset,
                "--model",
                kind,
                "--seed",
                str(args.seed),
                "--threads",
                str(args.threads),
                "--params",
                json.dumps(params),
            ]
            started = time.perf_counter()
            row = worker(command, env)
            row.setdefault("model", kind)
            row["wall_seconds"] = time.perf_counter() - started
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        if not args.skip_pykt:
            if not Path(args.pykt_python).exists():
                rows.append({"model": "pykt_dkt", "error": f"{args.pykt_python} missing: run bench/setup_pykt.sh"})
            else:
                folder = REPO / ".bench" / "pykt_data" / dataset
                num_c = write_pykt_files(dataset, folder, args.seed, args.validation_fraction)
                command = [
                    args.pykt_python,
                    __file__,
                    "--worker",
                    "pykt",
                    "--folder",
                    str(folder),
                    "--num-c",
                    str(num_c),
                    "--seed",
                    str(args.seed),
                    "--threads",
                    str(args.threads),
                ]
                started = time.perf_counter()
                row = worker(command, env)
                row.setdefault("model", "pykt_dkt")
                row["wall_seconds"] = time.perf_counter() - started
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
        for row in rows:
            row["dataset"] = dataset
        report["runs"].extend(rows)
        report.setdefault("published_auc", {})[dataset] = PUBLISHED[dataset]
    report["load_average_at_end"] = os.getloadavg()
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
