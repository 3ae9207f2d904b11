"""benchmarks/perf.py: its arguments, statistics, tables, data staging and results file (no model is run)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

PERF = Path(__file__).resolve().parents[1] / "benchmarks" / "perf.py"


@pytest.fixture(scope="module")
def perf():
    spec = importlib.util.spec_from_file_location("perf_benchmark", PERF)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture
def sst2_dir(tmp_path, perf) -> Path:
    texts = [f'sentence number {i} with a "quote"' for i in range(10)]
    labels = [i % 2 for i in range(10)]
    for name in perf.SST2_FILES.values():
        perf.write_sst2(tmp_path / "data" / "sst2" / name, texts, labels)
    return tmp_path / "data"


def test_summary_and_ratio(perf):
    assert perf.summarize([3.0, None, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert perf.summarize([10.0, 11.0]) == {"median": 10.5, "min": 10.0, "max": 11.0, "n": 2}
    assert perf.summarize([None]) == {"median": None, "min": None, "max": None, "n": 0}
    assert perf.speed_ratio(30.0, 12.0) == pytest.approx(2.5)
    assert perf.speed_ratio(None, 12.0) is None and perf.speed_ratio(30.0, 0) is None


def test_formatting_and_table(perf):
    assert perf.fmt_range({"median": 12.345, "min": 11.0, "max": 13.5, "n": 3}) == "12.3 (11.0–13.5)"
    assert perf.fmt_range({"median": 12.345, "min": 12.345, "max": 12.345, "n": 1}, ".2f") == "12.35"
    assert perf.fmt(None) == "–" and perf.fmt(1.5, ".1f", "x") == "1.5x"
    assert perf.points(0.90625) == "90.62%"
    cell = {"model_gflops": {"median": 421.3}, "fraction_of_peak": {"median": 0.000545}}
    assert perf._compute_cell(cell) == "421.3 (0.05%)"  # an H200's peak: not rounded to 0%
    assert perf._compute_cell({**cell, "fraction_of_peak": {"median": 0.347}}) == "421.3 (35%)"
    assert perf._compute_cell({**cell, "fraction_of_peak": {"median": None}}) == ""
    table = perf.markdown_table(["a", "b"], [[1, "x"], [2, "y"]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | x |", "| 2 | y |"]


def test_train_report_ratios(perf):
    variants = [perf.Variant(name, []) for name in ("stock", "stock_dynamic", "lab_loop")]
    variants.append(perf.Variant("hfclf", [], info={"hfclf": True, "flags": ""}))
    seconds = {"stock": [30, 32, 31], "stock_dynamic": [20, 21, 19], "lab_loop": [40, 40, 40], "hfclf": [10, 12, 11]}
    runs = {
        name: [{"train_s": s, "train_samples": 2000, "accuracy": 0.8, "precision": "fp32"} for s in values]
        for name, values in seconds.items()
    }
    for run in runs["hfclf"]:
        run["eval_in_train_s"] = 2.0  # already inside its train_s
    for name in ("stock", "stock_dynamic", "lab_loop"):
        for run in runs[name]:
            run["eval_s"] = 5.0  # after its train_s
    rows, text = perf.train_report(variants, runs)
    by_name = {row["variant"]: row for row in rows}
    assert by_name["hfclf"]["stock_over_this"] == pytest.approx(31 / 11)
    assert by_name["hfclf"]["samples_per_s"] == pytest.approx(2000 / 11)
    assert by_name["hfclf"]["with_eval_s"]["median"] == 11 and by_name["stock_dynamic"]["with_eval_s"]["median"] == 25
    assert "stock / hfclf = 2.82x" in text and "lab_loop / hfclf = 3.64x" in text
    assert "with the dev evaluation on both sides: stock / hfclf = 3.27x, stock_dynamic / hfclf = 2.27x" in text


def test_arguments(perf, sst2_dir):
    args = perf.parse_args(["--data_dir", str(sst2_dir), "--quick", "--variant", "bf16=--bf16 true"])
    assert (args.train_samples, args.eval_samples, args.repeats) == (64, 64, 1)
    assert args.variant == [("bf16", "--bf16 true")] and args.parts == ["train", "eval", "infer"]
    assert perf.parse_args(["--data_dir", str(sst2_dir), "--parts", "infer,train"]).parts == ["train", "infer"]
    for bad in (["--parts", "fit"], ["--variant", "no flags"], ["--variant", "hfclf=--bf16 true"]):
        with pytest.raises(SystemExit):
            perf.parse_args(["--data_dir", str(sst2_dir), *bad])


def test_staging_keeps_the_first_sentences(perf, sst2_dir, tmp_path):
    staged = perf.stage_data(sst2_dir, tmp_path / "staged", train_samples=4, eval_samples=3, test=False)
    texts, labels = perf.read_sst2(staged / "sst2" / "train.tsv.gz")
    assert texts == [f'sentence number {i} with a "quote"' for i in range(4)] and labels == [0, 1, 0, 1]
    assert len(perf.read_sst2(staged / "sst2" / "dev.tsv.gz")[0]) == 3
    assert not (staged / "sst2" / "test_labeled.tsv.gz").exists()


def test_child_protocol_and_results_file(perf, tmp_path):
    assert perf.last_json_line('noise\n{"a": 1}\nmore\n{"score_s": 2.5}\n', tmp_path) == {"score_s": 2.5}
    assert perf.accuracy_of(["negative", "positive", "positive"], [0, 1, 0]) == pytest.approx(2 / 3)
    output = tmp_path / "out" / "results.json"
    perf.write_results(str(output), {"x": 1})
    perf.write_results(str(output), {"x": 2})
    assert json.loads(output.read_text()) == {"x": 2}
    assert [p.name for p in output.parent.iterdir()] == ["results.json"]


def test_stopwatch(perf):
    class Module:
        @staticmethod
        def work(value):
            return value * 2

    watch = perf.Stopwatch()
    watch.install(Module, "work", "score")
    watch.install(Module, "absent", "load")  # a function the module lacks is left alone
    assert Module.work(3) == 6 and Module.work(4) == 8
    assert watch.calls == {"score": 2} and watch.seconds["score"] >= 0


def test_measure_alternates_and_drops_a_failing_variant(perf, tmp_path):
    order = tmp_path / "order.txt"
    script = "import json, sys; open(sys.argv[1], 'a').write(sys.argv[2]); print('noise', json.dumps({'score_s': 1}))"
    script += "; print(json.dumps({'score_s': 1.0}))"
    ok = [perf.Variant(name, [sys.executable, "-c", script, str(order), name], perf.last_json_line) for name in "AB"]
    failing = perf.Variant("C", [sys.executable, "-c", "import sys; sys.exit('broken model')"], perf.last_json_line)
    runs = perf.measure("eval", [*ok, failing], repeats=2, work=tmp_path / "work", env=dict(perf.os.environ))
    assert order.read_text() == "ABAB"
    assert list(runs) == ["A", "B"] and all(len(results) == 2 for results in runs.values())
    assert runs["A"][0]["score_s"] == 1.0 and runs["A"][0]["process_s"] > 0
    assert failing.command is None and failing.reason == "failed: broken model"
    assert perf.skipped_rows([*ok, failing], 3) == [["C", "failed: broken model", ""]]


def test_onnx_rows_follow_predict_help(perf, monkeypatch):
    monkeypatch.setattr(perf, "hfclf_help", lambda command: "usage: hfclf predict [-h] --model MODEL [--device DEVICE]")
    assert perf.predict_backends() == ([], "`hfclf predict --help` does not list --backend yet")
    monkeypatch.setattr(perf, "hfclf_help", lambda command: "[--backend {torch,onnx}] [--output OUTPUT]")
    assert perf.predict_backends() == (["torch", "onnx"], "`hfclf predict --backend` does not offer onnx-int8")
    backends, reason = perf.predict_backends("cuda")
    assert backends == ["torch"] and reason.startswith("ONNX Runtime here is its CPU build")


def child_spec(command: list[str]) -> dict:
    """The JSON spec a child run is started with (`perf.py --child KIND SPEC`)."""
    return json.loads(command[-1])


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_device_reaches_every_run(perf, sst2_dir, tmp_path, monkeypatch, device):
    """--device cuda puts every run on the GPU, training and the pipeline in bf16, and skips ONNX; the default keeps
    the GPU hidden and everything on the CPU as before."""
    monkeypatch.setattr(perf, "cuda_available", lambda: True)
    args = perf.parse_args(["--data_dir", str(sst2_dir), "--device", device, "--model", "/models/minilm"])
    env = perf.child_environment(2, device)
    assert ("CUDA_VISIBLE_DEVICES" in env and env["CUDA_VISIBLE_DEVICES"] == "") == (device == "cpu")
    ctx = perf.Context(args=args, work=tmp_path, env=env, model=args.model, train_data=sst2_dir, eval_data=sst2_dir)
    ctx.run, ctx.exported, ctx.backends = tmp_path / "run", tmp_path / "exported", ["torch", "onnx", "onnx-int8"]
    on_gpu = device == "cuda"

    train = {v.name: v.command for v in perf.train_variants(ctx)}
    for name in ("stock", "stock_dynamic", "lab_loop"):
        spec = child_spec(train[name])
        assert (spec["device"], spec["bf16"], spec["model"]) == (device, on_gpu, "/models/minilm")
    hfclf_words = train["hfclf"]
    assert hfclf_words[hfclf_words.index("--model") + 1] == "/models/minilm"
    assert ("--bf16" in hfclf_words) == on_gpu  # a GPU trains in fp32 unless asked; the CPU decides by itself

    for variant in perf.eval_variants(ctx):
        if variant.name.startswith("stock"):
            assert child_spec(variant.command)["bf16"] == on_gpu
        else:
            words = child_spec(variant.command)["argv"]
            assert words[words.index("--device") + 1] == device

    infer = {v.name: v.command for v in perf.infer_variants(ctx)}
    assert child_spec(infer["pipeline"])["device"] == device
    predict = child_spec(infer["hfclf_predict_torch"])["argv"]
    assert predict[predict.index("--device") + 1] == device


def test_device_cuda_needs_a_gpu(perf, sst2_dir, monkeypatch):
    monkeypatch.setattr(perf, "cuda_available", lambda: False)
    with pytest.raises(SystemExit):
        perf.parse_args(["--data_dir", str(sst2_dir), "--device", "cuda"])
