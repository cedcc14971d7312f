"""One hyper-parameter declaration per estimator: bounds on everything, checked the same everywhere."""

from __future__ import annotations

import math

import pytest

from tracing.estimators import ESTIMATORS, estimator_params, get_estimator
from tracing.estimators.hyper import MAX_THREADS, ParamError, UnknownParamError, default_threads

ABSURD = [
    ("hbkt", {"steps": 10**9}),
    ("psikt", {"steps": 10**9}),
    ("psikt", {"absorb_steps": 10**9}),
    ("bkt", {"max_iter": 10**9}),
    ("bkt", {"restarts": 100}),
    ("bkt", {"prior_window": 10**9}),
    ("dkt", {"threads": 64}),
    ("hbkt", {"threads": 64}),
    ("psikt", {"threads": 64}),
    ("cakt", {"threads": 64}),
    ("dkt", {"max_epochs": 10**6}),
    ("dkt", {"patience": 10**6}),
    ("dkt", {"hidden": 4096}),
    ("dkt", {"batch_size": 100_000}),
    ("cakt", {"channels": 256}),
    ("sakt", {"heads": 64, "size": 1024}),
    ("hbkt", {"batch_size": 10**9}),
    ("psikt", {"max_length": 10**9}),
    ("rate", {"prior_strength": 1e300}),
]


@pytest.mark.parametrize("kind", sorted(ESTIMATORS))
def test_every_parameter_of_every_estimator_is_declared_once_with_bounds(kind):
    estimator_class = get_estimator(kind)
    declared = estimator_params(kind)
    assert estimator_class.PARAMS is declared
    model = estimator_class()
    assert list(model.hyper_parameters()) == list(declared.names)
    for param in declared.params:
        if param.kind is bool:
            continue
        if param.kind is str:
            assert param.default in param.choices, f"{kind}.{param.name}'s default is not one of its choices"
            continue
        assert param.low is not None and param.high is not None, f"{kind}.{param.name} has no bounds"
        value = model.hyper_parameters()[param.name]
        assert param.admits(value), f"{kind}.{param.name}'s default {value} is out of its own bounds"


@pytest.mark.parametrize(("kind", "params"), ABSURD)
def test_absurd_values_that_would_hold_a_worker_are_refused(kind, params):
    with pytest.raises(ParamError) as caught:
        get_estimator(kind)(**params)
    assert caught.value.name in params


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        # The configurations README's benchmarks run (bench/bkt.py, bench/deep.py, bench/psikt.py).
        ("bkt", {"restarts": 5, "forgets": True}),
        ("bkt", {"multigs": True, "multiprior": True}),
        ("psikt", {"steps": 150, "batch_size": 128, "max_length": 150, "threads": 1}),
        ("psikt", {"threads": 1, "dynamics": "ou"}),
        ("hbkt", {"steps": 150, "batch_size": 128, "max_length": 150, "threads": 1}),
        ("dkt", {"max_epochs": 8}),
        ("dkt", {"threads": 1, "validation_fraction": 0.1}),
        ("cakt", {"plateau_decay": 1.0}),
        ("cakt", {"channels": 8}),
        ("dkt", {"hidden": 200}),
    ],
)
def test_realistic_configurations_still_validate(kind, params):
    config = estimator_params(kind).check(params, owner=kind)
    assert all(config[name] == value for name, value in params.items())


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_numbers_are_refused(value):
    with pytest.raises(ParamError, match="finite"):
        estimator_params("psikt").check({"learning_rate": value}, owner="psikt")


def test_unknown_and_unprintable_names_are_refused():
    with pytest.raises(UnknownParamError) as caught:
        estimator_params("bkt").check({"restart": 3}, owner="BKT")
    assert caught.value.name == "restart" and "restarts" in str(caught.value)
    with pytest.raises(ParamError, match="text"):
        estimator_params("bkt").check({"\ud800": 1}, owner="BKT")
    with pytest.raises(ParamError, match="object"):
        estimator_params("bkt").check([1, 2], owner="BKT")


def test_an_artifact_saved_under_wider_bounds_still_loads(tmp_path, assist_slice):
    """Bounds are for new requests: a course's active model, fitted before they tightened, must still load."""
    bkt = get_estimator("bkt")
    train, _ = assist_slice
    model = bkt(max_iter=3).fit(train.subset(range(20)), seed=0)
    model.config["restarts"] = 50  # as a fit made before restarts were capped at 20 would have stored it
    model.save(tmp_path / "model.bkt")
    assert bkt.load(tmp_path / "model.bkt").hyper_parameters()["restarts"] == 50


def test_torch_threads_default_is_read_in_one_place_and_bounded(monkeypatch):
    monkeypatch.setenv("TRACING_TORCH_THREADS", "3")
    assert default_threads() == 3
    assert get_estimator("hbkt")().hyper_parameters()["threads"] == 3
    monkeypatch.setenv("TRACING_TORCH_THREADS", "500")
    assert default_threads() == MAX_THREADS
    monkeypatch.setenv("TRACING_TORCH_THREADS", "many")
    assert default_threads() == 2


@pytest.mark.parametrize("value", ["OU", "brownian", "", 1, None, True, ["ou"]])
def test_a_choice_parameter_takes_only_its_choices(value):
    with pytest.raises(ParamError, match="dynamics must be one of jump, ou") as caught:
        estimator_params("psikt").check({"dynamics": value}, owner="psikt")
    assert caught.value.name == "dynamics"
    # An artifact's own parameters are checked unbounded, but a choice outside the list has no code to run.
    with pytest.raises(ParamError):
        estimator_params("psikt").check({"dynamics": value}, owner="psikt", bounded=False)


def test_a_choice_parameter_is_an_enum_in_the_schema():
    schema = estimator_params("psikt").schema()["properties"]["dynamics"]
    assert schema["type"] == "string" and schema["enum"] == ["jump", "ou"] and schema["default"] == "jump"
