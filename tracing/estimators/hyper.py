"""Hyper-parameters of every estimator, declared once: name, type, default, bounds, help.

One declaration serves the estimator's constructor, ``hyper_parameters()``, the fit
request's validation and the OpenAPI schema. It lives here, beside the registry and
without torch or pyro, so the web process can check a request and describe the
parameters without importing a model. Each estimator class points at its own tuple
(``PARAMS``); the contract test checks that every registered kind has one.

The bounds allow every configuration the benchmarks use (README) with room to spare,
and stop a request from occupying a worker for days: no billion SVI steps or EM
iterations, no 64 torch threads, no 100 restarts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

THREADS_ENV = "TRACING_TORCH_THREADS"
MAX_THREADS = 16


class ParamError(ValueError):
    """A hyper-parameter the estimator refuses; ``name`` is the parameter (None: the whole set)."""

    def __init__(self, message: str, *, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


class UnknownParamError(ParamError, TypeError):
    """A keyword the estimator does not have (a TypeError too, as Python says for unknown keywords)."""


def default_threads() -> int:
    """The torch CPU thread count of a fit that names none: env TRACING_TORCH_THREADS (else 2),
    within [1, MAX_THREADS]. The one place the variable is read."""
    try:
        threads = int(os.environ.get(THREADS_ENV, "2"))
    except ValueError:
        threads = 2
    return max(1, min(threads, MAX_THREADS))


@dataclass(frozen=True)
class Param:
    """One hyper-parameter. ``kind`` is bool, int, float or str; numbers lie in [low, high] ((low, high]
    with ``open_low``), a str is one of ``choices``. A ``default_from`` is called when the value is
    None (so None means "the operator's default", read when the estimator is built)."""

    name: str
    kind: type
    default: Any
    low: float | None = None
    high: float | None = None
    help: str = ""
    open_low: bool = False
    default_from: Callable[[], Any] | None = None
    choices: tuple[str, ...] = ()

    def check(self, value: Any, *, bounded: bool = True) -> Any:
        """``value`` as this parameter's type, or ParamError naming the parameter."""
        name = self.name
        if value is None and self.default_from is not None:
            value = self.default_from()
        if self.kind is bool:
            if not isinstance(value, (bool, np.bool_)):
                raise ParamError(f"{name} must be true or false, got {_shown(value)}", name=name)
            return bool(value)
        if self.kind is str:
            # Checked even when unbounded: a value outside the choices has no code path to run.
            if not isinstance(value, str) or value not in self.choices:
                raise ParamError(f"{name} must be one of {', '.join(self.choices)}, got {_shown(value)}", name=name)
            return value
        if self.kind is int:
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise ParamError(f"{name} must be an integer, got {_shown(value)}", name=name)
            value = int(value)
        else:
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ParamError(f"{name} must be a number, got {_shown(value)}", name=name)
            try:
                value = float(value)
            except OverflowError:  # an integer of hundreds of digits
                value = math.inf
            if not math.isfinite(value):
                raise ParamError(f"{name} must be a finite number, got {value!r}", name=name)
        if bounded and not self.admits(value):
            raise ParamError(f"{name} must be in {self.interval()}, got {value!r}", name=name)
        return value

    def admits(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or value <= self.high

    def interval(self) -> str:
        low = "-inf" if self.low is None else _number(self.low)
        high = "inf" if self.high is None else _number(self.high)
        return f"{'(' if self.open_low else '['}{low}, {high}]"

    def schema(self) -> dict[str, Any]:
        """This parameter as an OpenAPI 3.0 schema object."""
        kinds = {bool: "boolean", int: "integer", float: "number", str: "string"}
        result: dict[str, Any] = {"type": kinds[self.kind], "description": self.help}
        if self.kind is str:
            result["enum"] = list(self.choices)
        elif self.kind is not bool:
            if self.low is not None:
                result["minimum"] = self.low
                if self.open_low:
                    result["exclusiveMinimum"] = True
            if self.high is not None:
                result["maximum"] = self.high
        if self.default_from is not None:
            result["nullable"] = True
            result["description"] = f"{self.help} (null or absent: the server's default)"
        else:
            result["default"] = self.default
        return result


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_text(value: str) -> bool:
    """False for strings that cannot be stored or shown: lone UTF-16 surrogates (JSON "\\ud800")."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _even_window(config: Mapping[str, Any]) -> None:
    if config["window"] % 2:
        raise ParamError(f"window must be even, got {config['window']}", name="window")


def _heads_divide_size(config: Mapping[str, Any]) -> None:
    if config["size"] % config["heads"]:
        raise ParamError(f"heads ({config['heads']}) must divide size ({config['size']})", name="heads")


@dataclass(frozen=True)
class HyperParameters:
    """An estimator's parameters and the rules across them (each raises ParamError)."""

    params: tuple[Param, ...]
    rules: tuple[Callable[[Mapping[str, Any]], None], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(param.name for param in self.params)

    def check(self, params: Any, *, owner: str, bounded: bool = True) -> dict[str, Any]:
        """Every parameter checked, defaults filled in; ParamError (UnknownParamError for a name the
        estimator lacks) on the first fault. ``bounded=False`` keeps the type checks only, for an
        artifact's own parameters, saved under the bounds of its day."""
        if not isinstance(params, Mapping):
            raise ParamError(f"parameters must be an object, got {type(params).__name__}")
        declared = {param.name: param for param in self.params}
        for name in params:
            if not isinstance(name, str) or not _is_text(name):
                raise ParamError(f"parameter names must be text, got {_shown(name)}")
            if name not in declared:
                known = ", ".join(sorted(declared)) or "none"
                raise UnknownParamError(f"{owner} has no parameter {_shown(name)}; it has: {known}", name=name)
        config = {
            name: param.check(params.get(name, param.default), bounded=bounded) for name, param in declared.items()
        }
        for rule in self.rules:
            rule(config)
        return config

    def schema(self) -> dict[str, Any]:
        """The parameters as one OpenAPI object schema (no others allowed)."""
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {param.name: param.schema() for param in self.params},
        }


THREADS = Param(
    "threads",
    int,
    None,
    1,
    MAX_THREADS,
    f"torch CPU threads (default env {THREADS_ENV} or 2)",
    default_from=default_threads,
)

RATE = HyperParameters(
    (
        Param(
            "prior_strength",
            float,
            5.0,
            0.0,
            1e6,
            "weight, in answers, of the course's rate in a learner's Beta posterior",
            open_low=True,
        ),
    )
)

BKT = HyperParameters(
    (
        Param("forgets", bool, False, help="fit a forgetting transition too"),
        Param("multigs", bool, False, help="one guess and slip per (item, skill) link (KT-IDEM)"),
        Param("multiprior", bool, False, help="prior per learner class read from earlier answers (PPS)"),
        Param("restarts", int, 5, 1, 20, "EM starts per skill (restart 0 is a typical BKT start), best kept"),
        Param("max_iter", int, 100, 1, 1000, "EM iterations per restart at most"),
        Param("tol", float, 3e-5, 0.0, 1.0, "stop a restart when an iteration gains less than this (nats per answer)"),
        Param("max_guess", float, 0.5, 0.0, 1.0, "upper bound of P(correct | unknown)", open_low=True),
        Param("max_slip", float, 0.5, 0.0, 1.0, "upper bound of P(wrong | known)", open_low=True),
        Param("prior_window", int, 10, 1, 1000, "first answers that decide a learner's prior class (multiprior)"),
        Param("prior_bins", int, 2, 1, 20, "prior classes by correct rate (multiprior)"),
        Param(
            "shards",
            int,
            1,
            1,
            64,
            "worker tasks the skills' EM is split over (the same fit, spread); absent: TRACING_BKT_SHARDS",
        ),
    )
)

_STEPS = Param("steps", int, 300, 1, 5000, "SVI steps")
_MAX_LENGTH = Param(
    "max_length", int, 200, 2, 10_000, "first rows of each learner used in fitting (prediction reads all)"
)

HBKT = HyperParameters(
    (
        _STEPS,
        Param("batch_size", int, 128, 1, 4096, "learners per SVI step"),
        Param("learning_rate", float, 0.05, 0.0, 1.0, "Adam step size", open_low=True),
        _MAX_LENGTH,
        THREADS,
    )
)

PSIKT = HyperParameters(
    (
        _STEPS,
        Param("batch_size", int, 64, 1, 4096, "learners per SVI step"),
        Param("learning_rate", float, 0.03, 0.0, 1.0, "Adam step size", open_low=True),
        _MAX_LENGTH,
        Param(
            "unit_seconds", float, 86400.0, 0.0, 1e8, "time unit of the forgetting rate on clocked data", open_low=True
        ),
        Param(
            "edge_prior", float, 0.05, 0.0, 0.5, "prior probability of a prerequisite edge (sparsity)", open_low=True
        ),
        Param("temperature", float, 0.5, 0.0, 10.0, "temperature of the relaxed edges", open_low=True),
        Param(
            "known_edge_prior",
            float,
            0.5,
            0.0,
            0.99,
            "prior probability of an edge the course's authors declared (0: declared edges get edge_prior too)",
        ),
        Param(
            "encoder",
            bool,
            False,
            None,
            None,
            "amortised inference: an encoder from a learner's answers to their traits, trained with the model",
        ),
        Param(
            "absorb_steps",
            int,
            2,
            1,
            1000,
            "SVI passes over newcomers when they are absorbed without a refit (each learner its own Adam at 0.5)",
        ),
        THREADS,
        Param(
            "dynamics",
            str,
            "jump",
            help="knowledge dynamics: jump (practice moves knowledge towards a ceiling, gated by the "
            "prerequisites) or ou (the paper's: an Ornstein-Uhlenbeck process whose long-run level the "
            "prerequisites' knowledge raises; answers inform it, practice has no term of its own)",
            choices=("jump", "ou"),
        ),
    )
)

_DEEP = (
    Param("window", int, 200, 4, 2000, "rows per window (even)"),
    Param("batch_size", int, 64, 1, 4096, "windows per batch"),
    Param("learning_rate", float, 2e-3, 1e-6, 1.0, "Adam step size"),
    Param("weight_decay", float, 0.0, 0.0, 1.0, "Adam L2 penalty"),
    Param("dropout", float, 0.2, 0.0, 0.9, "dropout before the output layer"),
    Param("max_epochs", int, 30, 1, 500, "epochs at most"),
    Param("patience", int, 3, 1, 100, "epochs without a better validation AUC before stopping"),
    Param(
        "plateau_decay",
        float,
        1.0,
        0.01,
        1.0,
        "after an epoch without a better validation AUC, go back to the "
        "best weights (and optimiser state) and multiply the step size by this; 1: off",
    ),
    Param("validation_fraction", float, 0.1, 0.0, 0.5, "share of training learners held out for early stopping"),
    Param("gradient_clip", float, 10.0, 0.0, 1e6, "max gradient norm (0: none)"),
    THREADS,
)


def _deep(*own: Param, rules: tuple[Callable[[Mapping[str, Any]], None], ...] = ()) -> HyperParameters:
    """The common deep parameters, with a model's own ones added or replacing a common default."""
    mine = {param.name: param for param in own}
    return HyperParameters(
        (*(mine.pop(param.name, param) for param in _DEEP), *mine.values()), rules=(_even_window, *rules)
    )


DKT = _deep(
    # Training recipe of the reference DKT (pyKT's: batch 256, Adam 1e-3), replacing the shared
    # defaults (64, 2e-3). Fewer, larger steps need more epochs to converge, hence the longer
    # patience and cap; early stopping on the validation carve-out still decides when to stop.
    Param("batch_size", int, 256, 1, 4096, "windows per batch"),
    Param("learning_rate", float, 1e-3, 1e-6, 1.0, "Adam step size"),
    Param("patience", int, 5, 1, 100, "epochs without a better validation AUC before stopping"),
    Param("max_epochs", int, 100, 1, 500, "epochs at most"),
    Param("embedding", int, 100, 1, 1024, "size of the (skill, answer) embedding"),
    Param("hidden", int, 100, 1, 1024, "LSTM state size"),
    Param("layers", int, 1, 1, 4, "stacked LSTM layers"),
)

CAKT = _deep(
    # ``plateau_decay`` stays off (1) as for every deep model: 0.5 was re-chosen on validation folds
    # and did not clear the noise (docs/choices.md, issue 16).
    Param("frame", int, 8, 2, 64, "H: answers are embedded as H x H frames"),
    Param("recent", int, 8, 1, 64, "k: earlier rows on the same concept read by the convolution"),
    Param("channels", int, 4, 1, 64, "channels of the 3D convolution blocks"),
    Param("blocks", int, 1, 0, 8, "residual 3D convolution blocks"),
    Param("hidden", int, 100, 1, 1024, "state size of the second LSTM"),
)

SAKT = _deep(
    Param("size", int, 64, 1, 1024, "embedding and attention width"),
    Param("heads", int, 4, 1, 16, "attention heads (must divide size)"),
    rules=(_heads_divide_size,),
)

BY_KIND: dict[str, HyperParameters] = {
    "rate": RATE,
    "bkt": BKT,
    "hbkt": HBKT,
    "psikt": PSIKT,
    "dkt": DKT,
    "cakt": CAKT,
    "sakt": SAKT,
}
"""kind -> its hyper-parameters, for callers that must not import the estimator (the web process):
each estimator class names the same object as its ``PARAMS``."""
