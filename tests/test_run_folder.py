"""The run folder's results record: typed, versioned, and read by one owner."""

import json
import math

import pytest

from hfclf.errors import HfclfInputError
from hfclf.run_folder import RESULTS_VERSION, RunResults


def test_results_round_trip_and_older_versions(tmp_path):
    results = RunResults(
        train={"train_runtime": 1.5},
        eval={"eval_accuracy": 0.75, "eval_samples": 4},
        test={},
        label_names=["neg", "pos"],
        arguments={"model": {"arch": "lstm"}, "data": {"dataset": "sst2"}, "training": {"seed": 7, "bf16": True}},
        max_length=64,
    )
    results.save(tmp_path)
    loaded = RunResults.load(tmp_path)
    assert loaded == results and loaded.version == RESULTS_VERSION
    assert (loaded.split, loaded.metric("accuracy"), loaded.seed, loaded.precision) == ("eval", 0.75, 7, "bf16")

    # written by an hfclf before the record was versioned: no version, no max_length, keys since dropped
    legacy = json.loads((tmp_path / "results.json").read_text())
    del legacy["version"], legacy["max_length"]
    legacy["retired_key"] = 1
    (tmp_path / "results.json").write_text(json.dumps(legacy))
    old = RunResults.load(tmp_path)
    assert old.version == 1 and old.max_length is None and old.metric("accuracy") == 0.75

    legacy["version"] = RESULTS_VERSION + 1
    (tmp_path / "results.json").write_text(json.dumps(legacy))
    with pytest.raises(HfclfInputError, match="written by a newer hfclf"):
        RunResults.load(tmp_path)
    assert RunResults.load(tmp_path / "nowhere") is None


def test_partial_results_load_with_defaults(tmp_path):
    (tmp_path / "results.json").write_text('{"eval": {"eval_accuracy": 0.5}}')
    results = RunResults.load(tmp_path)
    assert results.metric("accuracy") == 0.5 and results.label_names == [] and results.seed is None


def test_a_metric_without_value_is_strict_json_and_reads_back_as_nan(tmp_path):
    """A constant prediction has no correlation: results.json writes it as null (bare NaN is not JSON) and the record
    reads it back as NaN, as the run measured it."""
    RunResults(eval={"eval_pearson": float("nan"), "eval_mse": 0.25}, log_history=[{"loss": float("inf")}]).save(
        tmp_path
    )
    text = (tmp_path / "results.json").read_text()
    strict = json.loads(text, parse_constant=lambda name: pytest.fail(f"results.json holds {name}"))
    assert strict["eval"] == {"eval_pearson": None, "eval_mse": 0.25} and strict["log_history"] == [{"loss": None}]
    loaded = RunResults.load(tmp_path)
    assert math.isnan(loaded.metric("pearson")) and loaded.metric("mse") == 0.25
