"""pyKT's own models (pykt-toolkit 0.0.38, run from ``bench/setup_pykt.sh``'s venv) on bench/models.py's folds.

bench/models.py calls :func:`fold_run` for a model named ``pykt_<name>``: the fold's training
learners (less a validation carve-out, the very learners our deep models stop early on:
``tracing.estimators.deep.validation_split`` with the fold as seed) and its test learners cut
into pyKT's 200-row pieces (``tracing.evaluation.chunked``, the rows every model is scored on
under that protocol) are written as pyKT sequence files; a worker in pyKT's venv fits pyKT's
model with pyKT's ``train_model`` (Adam, its early stopping: 10 epochs without a validation
AUC gain of 1e-3, best checkpoint kept) and writes its prediction for every test row; those
are mapped back onto the rows of the fold, so the paired bootstrap compares row for row.

Inputs: one row per answer (no multi-skill expansion). ``questions`` = the item and
``concepts`` = its first skill where the dataset has items distinct from skills (DBE-KT22);
where it has only skills (assist2015) the skill is the concept and there are no questions
(pyKT's own set-up for that file: ``num_q`` 0, so AKT runs without its Rasch difficulty).

Only pyKT's chunked protocol is produced: its models restart context every 200 rows.
The worker imports nothing from this project (it runs in pyKT's venv).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYKT_PYTHON = Path(os.environ.get("PYKT_PYTHON", REPO / ".bench" / "pykt" / "bin" / "python"))
CHUNK = 200
# pyKT's defaults for each model: its examples/wandb_<model>_train.py arguments and its
# configs/kt_config.json (batch 64 for the attention models, "because of OOM"; 200 epochs at most).
DEFAULTS: dict[str, dict[str, Any]] = {
    "akt": {
        "d_model": 256,
        "d_ff": 512,
        "num_attn_heads": 8,
        "n_blocks": 4,
        "dropout": 0.2,
        "learning_rate": 1e-4,
        "batch_size": 64,
        "num_epochs": 200,
    },
}


# ---------------------------------------------------------------- host side (project venv)


def _sequence_lines(
    data: Any, concepts: Any, with_questions: bool, fold_of: Callable[[int], int], uid_of: Callable[[int], int]
) -> list[str]:
    """pyKT's sequence-file rows: one per learner of ``data`` (already cut into pieces of at most
    200 rows), padded to 200 with -1; ``uid`` is the learner a piece belongs to."""
    lines = []
    for learner, span in data.sequences():
        items = data.item[span].tolist()
        fields = []
        if with_questions:
            fields.append(items)
        fields.append(concepts[data.item[span]].tolist())
        fields.append([int(round(float(a))) for a in data.correct[span]])
        fields.append([1] * len(items))
        pad = CHUNK - len(items)
        fields = [field + [-1] * pad for field in fields]
        lines.append(
            f"{fold_of(learner)},{uid_of(learner)}," + ",".join('"' + ",".join(map(str, f)) + '"' for f in fields)
        )
    return lines


def write_fold_files(
    train: Any, test: Any, fold: int, folder: Path, validation_fraction: float = 0.1
) -> dict[str, Any]:
    """pyKT's sequence files for one fold in ``folder``: ``train_valid_sequences.csv`` (the training
    learners' 200-row pieces; pyKT fold 0 = our deep models' validation carve-out, 1 = the rest) and
    ``test_sequences.csv`` (the test learners' pieces, as ``chunked`` cuts them). Returns what the
    worker and the mapping back need."""
    import numpy as np

    from tracing.estimators.deep import validation_split
    from tracing.evaluation import chunked

    with_questions = train.n_items != train.n_skills or not np.all(train.q_matrix == np.eye(train.n_skills))
    primary = train.primary_skill.astype(np.int64)
    # An item without a skill gets a concept of its own (pyKT needs one per row).
    concepts = np.where(primary >= 0, primary, train.n_skills)
    num_c = int(train.n_skills + (primary < 0).any())
    _, valid = validation_split(train.n_learners, validation_fraction, fold)
    is_valid = set(valid.tolist())
    train_pieces, _, _ = chunked(train)  # pyKT trains on 200-row pieces too (pieces under 3 rows dropped)
    owner = {name: index for index, name in enumerate(train.learner_ids)}
    piece_owner = [owner[name.rsplit("#", 1)[0]] for name in train_pieces.learner_ids]
    pieces, piece_rows, scored = chunked(test)
    folder.mkdir(parents=True, exist_ok=True)
    for cached in folder.glob("*.pkl"):
        cached.unlink()  # pyKT caches parsed files beside them; a new fold's files must be re-read
    header = "fold,uid," + ("questions," if with_questions else "") + "concepts,responses,selectmasks"
    train_lines = _sequence_lines(
        train_pieces,
        concepts,
        with_questions,
        lambda p: 0 if piece_owner[p] in is_valid else 1,
        lambda p: piece_owner[p],
    )
    (folder / "train_valid_sequences.csv").write_text("\n".join([header, *train_lines]) + "\n")
    test_lines = _sequence_lines(pieces, concepts, with_questions, lambda p: -1, lambda p: p)
    (folder / "test_sequences.csv").write_text("\n".join([header, *test_lines]) + "\n")
    return {
        "num_q": train.n_items if with_questions else 0,
        "num_c": num_c,
        "pieces": pieces,
        "piece_rows": piece_rows,
        "scored": scored,
        "train_pieces": len(train_lines),
        "validation_pieces": sum(line.startswith("0,") for line in train_lines),
        "validation_learners": len(is_valid),
        "inputs": "question id + its first skill" if with_questions else "skill id as concept, no question id",
    }


def _worker_env() -> dict[str, str]:
    """The pyKT worker's environment: this one, with one thread for torch's CPU kernels."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _worker_command(
    python: Path, script: Path, folder: Path, name: str, files: dict[str, Any], config: dict[str, Any], *extra: str
) -> list[str]:
    """This module run as pyKT's worker in pyKT's venv, on the fold files in ``folder``."""
    return [
        str(python),
        str(Path(script).resolve()),
        "--folder",
        str(folder),
        "--model",
        name,
        "--num-q",
        str(files["num_q"]),
        "--num-c",
        str(files["num_c"]),
        "--config",
        json.dumps(config),
        *extra,
    ]


def fold_run(
    train: Any,
    test: Any,
    model: str,
    fold: int,
    folder: Path,
    *,
    quick: bool,
    validation_fraction: float = 0.1,
    python: Path = PYKT_PYTHON,
    script: Path = Path(__file__),
) -> dict[str, Any]:
    """pyKT's ``model`` fitted on ``train`` (a Dataset) and scored on ``test`` under pyKT's chunked
    protocol: bench/models.py's fold outcome (arrays and meta) with the chunked keys only (the caller
    adds ``rows_learner``)."""
    import numpy as np

    name = model.removeprefix("pykt_")
    files = write_fold_files(train, test, fold, folder, validation_fraction)
    pieces, piece_rows, scored = files["pieces"], files["piece_rows"], files["scored"]
    config = {**DEFAULTS[name], **({"num_epochs": 1} if quick else {})}
    if not Path(python).exists():
        raise RuntimeError(f"{python} missing: run bench/setup_pykt.sh")
    command = _worker_command(python, script, folder, name, files, config, "--seed", str(fold))
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, env=_worker_env())
    (folder / "worker.log").write_text(completed.stdout + completed.stderr)
    if completed.returncode != 0:
        raise RuntimeError(f"pyKT worker failed:\n{completed.stderr[-3000:]}")
    meta = json.loads(completed.stdout.strip().splitlines()[-1])
    with np.load(folder / "predictions.npz") as stored:
        prediction = stored["prediction"].astype(np.float64)
    # The worker's predictions follow the test file: piece by piece, rows 1..len-1 of each.
    expected = pieces.lengths - 1
    if len(prediction) != int(expected.sum()) or int(scored.sum()) != len(prediction):
        raise RuntimeError(f"pyKT returned {len(prediction)} predictions for {int(scored.sum())} scored rows")
    return {
        "arrays": {
            "correct": test.correct.astype(np.float64),
            "chunk_rows": piece_rows[scored],
            "chunked": prediction,
        },
        "meta": {
            **meta,
            "wall_seconds": time.perf_counter() - started,
            "params": {**config, "num_q": files["num_q"], "num_c": files["num_c"]},
            "inputs": files["inputs"],
            "train_learners": int(train.n_learners),
            "test_learners": int(test.n_learners),
            "validation_learners": files["validation_learners"],
        },
    }


# ---------------------------------------------------------------- worker (pyKT's venv)


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def step_cost(model: Any, optimiser: Any, train_loader: Any, valid_loader: Any, steps: int) -> dict[str, Any]:
    """CPU and wall seconds of ``steps`` of pyKT's training steps (its ``model_forward``, backward,
    Adam) and of one evaluation batch: what an epoch costs, without running one."""
    import resource

    import torch
    from pykt.models.train_model import model_forward

    train_steps = []
    for index, data in enumerate(train_loader):
        if index == steps:
            break
        wall, cpu = time.perf_counter(), _cpu_seconds()
        model.train()
        loss = model_forward(model, data)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        train_steps.append(
            {"cpu": _cpu_seconds() - cpu, "wall": time.perf_counter() - wall, "rows": int(data["smasks"].shape[0])}
        )
    model.eval()
    data = next(iter(valid_loader))
    wall, cpu = time.perf_counter(), _cpu_seconds()
    with torch.no_grad():
        cc = torch.cat((data["cseqs"][:, 0:1], data["shft_cseqs"]), dim=1)
        cr = torch.cat((data["rseqs"][:, 0:1], data["shft_rseqs"]), dim=1)
        cq = torch.cat((data["qseqs"][:, 0:1], data["shft_qseqs"]), dim=1)
        model(cc.long(), cr.long(), cq.long())
    return {
        "train_steps": train_steps,
        "eval_batch": {"cpu": _cpu_seconds() - cpu, "wall": time.perf_counter() - wall},
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }


def worker(
    folder: Path, name: str, num_q: int, num_c: int, seed: int, config: dict[str, Any], steps: int = 0
) -> dict[str, Any]:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    import pykt.datasets.data_loader as loader

    if not torch.cuda.is_available():
        # pyKT builds torch.cuda tensors in its loader; on a CPU machine point those names at CPU types
        # (on a GPU it keeps them, and its models sit on the GPU: pyKT's own set-up there).
        loader.LongTensor, loader.FloatTensor = torch.LongTensor, torch.FloatTensor
    from pykt.models.init_model import init_model
    from pykt.models.train_model import train_model
    from pykt.utils import set_seed
    from torch.utils.data import DataLoader

    set_seed(seed)
    inputs = (["questions"] if num_q else []) + ["concepts"]
    batch = config["batch_size"]
    data_file = str(folder / "train_valid_sequences.csv")
    train_loader = DataLoader(loader.KTDataset(data_file, inputs, {1}), batch_size=batch, shuffle=True)
    valid_loader = DataLoader(loader.KTDataset(data_file, inputs, {0}), batch_size=batch, shuffle=False)
    model_config = {k: v for k, v in config.items() if k not in ("learning_rate", "batch_size", "num_epochs")}
    data_config = {"num_q": num_q, "num_c": num_c, "emb_path": ""}
    model = init_model(name, model_config, data_config, "qid")
    optimiser = torch.optim.Adam(model.parameters(), config["learning_rate"])
    if steps:
        return step_cost(model, optimiser, train_loader, valid_loader, steps)
    checkpoints = folder / "checkpoints"
    checkpoints.mkdir(exist_ok=True)
    started = time.perf_counter()
    *_, valid_auc, _, best_epoch = train_model(
        model, train_loader, valid_loader, config["num_epochs"], optimiser, str(checkpoints), save_model=True
    )
    fit_seconds = time.perf_counter() - started
    model.load_state_dict(torch.load(checkpoints / "qid_model.ckpt", map_location="cpu"))
    model.eval()
    test_loader = DataLoader(
        loader.KTDataset(str(folder / "test_sequences.csv"), inputs, {-1}), batch_size=batch, shuffle=False
    )
    scores = []
    with torch.no_grad():
        for data in test_loader:
            # pyKT's own evaluate() call for AKT: the whole piece in, the prediction for rows 1.. out.
            q, c, r = data["qseqs"], data["cseqs"], data["rseqs"]
            cq = torch.cat((q[:, 0:1], data["shft_qseqs"]), dim=1)
            cc = torch.cat((c[:, 0:1], data["shft_cseqs"]), dim=1)
            cr = torch.cat((r[:, 0:1], data["shft_rseqs"]), dim=1)
            y, _ = model(cc.long(), cr.long(), cq.long())
            scores.append(torch.masked_select(y[:, 1:], data["smasks"]).cpu().numpy())
    np.savez_compressed(folder / "predictions.npz", prediction=np.concatenate(scores))
    # train_model stops 10 epochs after its best, or at num_epochs.
    epochs = min(best_epoch + 10, config["num_epochs"])
    return {
        "epochs": int(epochs),
        "best_epoch": int(best_epoch),
        "best_valid_auc": float(valid_auc),
        "fit_seconds": fit_seconds,
        "seconds_per_epoch": fit_seconds / epochs,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }


def cost(datasets: list[str], model: str, steps: int, out: Path | None) -> dict[str, Any]:
    """What pyKT's ``model`` at its defaults costs on bench/models.py's full run, measured on fold 0
    of each dataset: seconds per training step and evaluation batch, the batches of an epoch, and
    the least a fold can take (pyKT stops 10 epochs after its best, so 11 epochs at the very least)."""
    import numpy as np

    sys.path.insert(0, str(REPO))
    from bench import models
    from tracing.evaluation import learner_folds

    report: dict[str, Any] = {
        "model": model,
        "config": DEFAULTS[model],
        "threads": 1,
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_at_start": os.getloadavg(),
        "datasets": {},
    }
    for dataset in datasets:
        sample, _, _, _ = models.bench_sample(dataset, False)
        test_learners = learner_folds(sample.n_learners, folds=models.FOLDS, seed=0)[0]
        train = sample.subset(np.setdiff1d(np.arange(sample.n_learners), test_learners))
        folder = REPO / ".bench" / "pykt_cost" / dataset
        files = write_fold_files(train, sample.subset(test_learners), 0, folder)
        command = _worker_command(
            PYKT_PYTHON, Path(__file__), folder, model, files, DEFAULTS[model], "--steps", str(steps)
        )
        completed = subprocess.run(command, capture_output=True, text=True, env=_worker_env(), check=True)
        measured = json.loads(completed.stdout.strip().splitlines()[-1])
        batch = DEFAULTS[model]["batch_size"]
        train_batches = -(-(files["train_pieces"] - files["validation_pieces"]) // batch)
        valid_batches = -(-files["validation_pieces"] // batch)
        step_cpu = float(np.mean([s["cpu"] for s in measured["train_steps"]]))
        epoch_cpu = train_batches * step_cpu + valid_batches * measured["eval_batch"]["cpu"]
        report["datasets"][dataset] = {
            **measured,
            "train_pieces": files["train_pieces"] - files["validation_pieces"],
            "validation_pieces": files["validation_pieces"],
            "train_batches_per_epoch": train_batches,
            "cpu_seconds_per_step": step_cpu,
            "cpu_seconds_per_epoch": epoch_cpu,
            "least_cpu_hours_per_fold": 11 * epoch_cpu / 3600,
            "least_cpu_hours_5_folds": 5 * 11 * epoch_cpu / 3600,
        }
        print(json.dumps({dataset: report["datasets"][dataset]}), file=sys.stderr, flush=True)
    report["load_average_at_end"] = os.getloadavg()
    if out:
        out.write_text(json.dumps(report, indent=1) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cost", action="store_true", help="measure what a full run costs (project venv)")
    parser.add_argument("--datasets", default="assist2015,dbe_kt22", help="with --cost")
    parser.add_argument("--out", type=Path, help="with --cost: also write the JSON here")
    parser.add_argument("--folder", type=Path, help="worker: the fold's files")
    parser.add_argument("--model", default="akt", choices=sorted(DEFAULTS))
    parser.add_argument("--num-q", type=int)
    parser.add_argument("--num-c", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", help="worker: pyKT's settings as JSON")
    parser.add_argument("--steps", type=int, default=0, help="worker: time this many training steps, fit nothing")
    args = parser.parse_args()
    if args.cost:
        print(json.dumps(cost(args.datasets.split(","), args.model, max(args.steps, 2), args.out), indent=1))
        return
    result = worker(args.folder, args.model, args.num_q, args.num_c, args.seed, json.loads(args.config), args.steps)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
