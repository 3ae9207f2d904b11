"""The one parsing path of run arguments: files, mappings and command-line words alike, and model size on the config
class."""

import pytest

from hfclf.errors import HfclfInputError
from hfclf.training_args import parse_args, parse_values

BASE = {"train_file": "train.csv", "output_dir": "runs/x"}


def test_file_values_are_typed_and_checked_like_words():
    model, _, training = parse_values(
        {**BASE, "learning_rate": "1e-4", "num_train_epochs": 3, "bf16": 0, "report_to": ["none"], "seed": None}
    )
    assert training.learning_rate == 1e-4 and training.num_train_epochs == 3.0
    assert isinstance(training.num_train_epochs, float) and training.bf16 is False
    assert training.report_to == [] and training.seed == 42  # a null value keeps the default
    assert model.pooling == "cls"  # resolved from the --arch entry
    refused = {
        "train_sampling_strategy": ("bogus", "invalid choice 'bogus'"),
        "per_device_train_batch_size": (8.5, "invalid int value: 8.5"),
        "lora_target_modules": (["query", "value"], "takes one value, not a list"),
        "num_train_epochz": (3, "Unknown flag 'num_train_epochz' in run.yaml; see --help"),
        "no_word_vectors": (True, "Unknown flag 'no_word_vectors' in run.yaml; write 'word_vectors: false' instead"),
        "no_bf16": (False, "Unknown flag 'no_bf16' in run.yaml; write 'bf16: true' instead"),
        "label_names": (["y"], "--label-names is set by hfclf"),
        "seed": ({"x": 1}, "argument --seed takes one value, not a mapping"),
        "config_overrides": ({"num_hidden_layers": 1}, "argument --config_overrides takes one value, not a mapping"),
    }
    for key, (value, message) in refused.items():
        with pytest.raises(HfclfInputError, match=message):
            parse_values({**BASE, key: value}, source="run.yaml")


def test_a_flag_is_taken_only_as_written_in_full():
    """argparse would take a prefix (--lora_alp for --lora_alpha), which the checks of given flags would not see."""
    for prefix in ("--lora_alp", "--lstm_lay"):
        with pytest.raises(HfclfInputError, match=f"unrecognized arguments: {prefix} 16"):
            parse_args(["--train_file", "t.csv", prefix, "16"])


def test_a_model_path_that_does_not_exist_is_refused_before_the_data_loads(tmp_path):
    for missing in ("/nonexistent_model", "./runs/nope", "runs/a/b", str(tmp_path / "nope")):
        with pytest.raises(HfclfInputError, match=f"--model {missing} does not exist; pass a model folder, a Hub id"):
            parse_values({**BASE, "model": missing})
    assert parse_values({**BASE, "model": "user/name"})[0].model == "user/name"  # a Hub id: resolved when loading


def test_null_size_flags_are_not_given():
    model, _, _ = parse_values({**BASE, "arch": "pooled", "lstm_layers": None, "lora_r": None})
    assert model.lstm_layers is None and model.lora_r == 8


def test_bare_true_false_size_flags():
    model, _, _ = parse_args(["--arch", "transformer", "--pre_layer_norm", "--train_file", "t.csv"])
    assert model.pre_layer_norm is True and model.config_fields() == {"pre_layer_norm": True}
    model, _, _ = parse_args(["--arch", "lstm", "--bidirectional", "false", "--freeze_embeddings", "--train_file", "t"])
    assert model.config_fields() == {"bidirectional": False, "freeze_embeddings": True}


def test_model_size_goes_to_the_config_class_typed_by_its_fields():
    model, _, training = parse_values(
        {**BASE, "arch": "lstm", "lstm_layers": 2, "model_config": {"dropout": "1e-1"}},
        ["--config_overrides", "hidden_size=64,bidirectional=false"],
    )
    assert model.config_fields() == {"num_layers": 2, "dropout": 0.1, "hidden_size": 64, "bidirectional": False}
    assert training.learning_rate == 2e-3  # the LSTM entry's default
    refused = {
        "num_layers=2.5": "num_layers takes a whole number, got '2.5'",
        "num_layers=": "--config-overrides takes 'field=value,...'",
        "num_layers=1,num_layers=3": "sets num_layers twice",
        "dropout=high": "dropout takes a number, got 'high'",
        "vocab_size=12": r"vocab_size \(hfclf sets it\) is not a field",
        "num_layerz=2": "num_layerz is not a field of LSTMConfig",
    }
    for overrides, message in refused.items():
        with pytest.raises(HfclfInputError, match=message):
            parse_values({**BASE, "arch": "lstm", "config_overrides": overrides})
    with pytest.raises(
        HfclfInputError, match=r"dropout is set twice \(0.1 by --dropout and 0.2 by --config_overrides\)"
    ):
        parse_values({**BASE, "arch": "lstm", "dropout": 0.1, "config_overrides": "dropout=0.2"})


def test_a_negated_flag_that_does_not_exist_names_the_one_that_does():
    """Only flags whose default is true get a --no_ form; for the others the error says how to write false."""
    for word in ("--no_bidirectional", "--no-bidirectional"):
        with pytest.raises(HfclfInputError, match=f"unrecognized arguments: {word} .*; write --bidirectional false"):
            parse_values({**BASE, "arch": "lstm"}, [word])
    with pytest.raises(HfclfInputError, match="unrecognized arguments: --no_such .*; see --help"):
        parse_values({**BASE, "arch": "lstm"}, ["--no_such"])


def test_model_size_on_the_command_line_overrides_the_files_field_by_field():
    """A config field the command line sets (size flag, --config_overrides, --model_config) replaces the file's
    value of it; the file's other fields stay, and the same value written twice is not a conflict."""
    file = {**BASE, "arch": "transformer", "model_config": {"num_hidden_layers": 1, "d_model": 16}}

    def fields(*argv):
        return parse_values(file, list(argv))[0].config_fields()

    assert fields() == {"num_hidden_layers": 1, "d_model": 16}
    assert fields("--config_overrides", "d_model=16") == {"num_hidden_layers": 1, "d_model": 16}
    assert fields("--config_overrides", "d_model=32") == {"num_hidden_layers": 1, "d_model": 32}
    assert fields("--num_layers", "2") == {"num_hidden_layers": 2, "d_model": 16}
    assert fields("--model_config", '{"num_hidden_layers": 3}') == {"num_hidden_layers": 3, "d_model": 16}
    lstm = {**BASE, "arch": "lstm", "lstm_layers": 2, "config_overrides": "dropout=0.2"}
    model = parse_values(lstm, ["--model_config", '{"num_layers": 3, "dropout": 0.1}'])[0]
    assert model.config_fields() == {"num_layers": 3, "dropout": 0.1}
    with pytest.raises(
        HfclfInputError, match=r"num_hidden_layers is set twice \(2 by --num_layers and 3 by --model_config\)"
    ):
        parse_values(file, ["--num_layers", "2", "--model_config", '{"num_hidden_layers": 3}'])


def test_compare_merges_model_config_field_by_field():
    from hfclf.commands.compare import expand_variants
    from hfclf.training_args import merge_flags

    merged = merge_flags({"model_config": {"num_layers": 2, "dropout": 0.3}}, {"model_config": {"num_layers": 1}})
    assert merged == {"model_config": {"num_layers": 1, "dropout": 0.3}}
    config = {"name": "g", "grid": {"model_config": [{"num_layers": 1}, {"num_layers": 2, "dropout": 0.1}]}}
    assert [v["name"] for v in expand_variants(config)] == ["numlayers1", "numlayers2-dropout0.1"]


@pytest.mark.parametrize(
    "native, flags, launcher, expected",
    [
        (True, [], None, True),  # a CPU with native bf16 trains in bf16 autocast by default
        (False, [], None, False),  # one without it keeps fp32
        (True, ["--bf16", "false"], None, False),  # fp32 is one flag away
        (False, ["--bf16"], None, True),  # and bf16 is asked for anywhere
        (True, ["--fp16"], None, False),  # fp16 asked for: never both
        (True, [], "fp16", False),  # `accelerate launch --mixed_precision fp16` decides
    ],
)
def test_bf16_default_follows_the_cpu(monkeypatch, tmp_path, native, flags, launcher, expected):
    import hfclf.training_args as training_args

    if training_args._accelerator_available():
        pytest.skip("an accelerator is present: the default there is transformers' (fp32)")
    monkeypatch.setattr(training_args, "cpu_computes_bf16", lambda: native)
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    if launcher:
        monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", launcher)
    if "--fp16" in flags:  # Trainer refuses fp16 on a CPU; the default must still not turn bf16 on beside it
        monkeypatch.setattr(training_args.TrainingArguments, "__post_init__", lambda self: None)
    _, _, args = parse_args(["--train_file", "t.csv", "--output_dir", str(tmp_path / "o"), *flags])
    assert args.bf16 is expected
    assert args.bf16_guessed is ("--bf16" not in flags and launcher is None)


def test_cpu_flags_are_read(tmp_path):
    from hfclf.training_args import cpu_computes_bf16

    for flags, expected in (("fpu avx2 avx512f avx512_bf16", True), ("fpu amx_bf16 amx_tile", True), ("avx2", False)):
        (tmp_path / "cpuinfo").write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        assert cpu_computes_bf16(str(tmp_path / "cpuinfo")) is expected
    assert cpu_computes_bf16(str(tmp_path / "missing")) is False  # not Linux: fp32


def test_launcher_precision_is_recorded(monkeypatch, tmp_path):
    """`accelerate launch --mixed_precision bf16` trains in bf16: results.json must say so, not fp32."""
    import hfclf.training_args as training_args

    monkeypatch.setattr(training_args, "cpu_computes_bf16", lambda: False)
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    _, _, args = parse_args(["--train_file", "t.csv", "--output_dir", str(tmp_path / "o")])
    assert args.bf16 is True and args.bf16_guessed is False


def test_a_trained_tokenizer_has_no_word_vectors_of_the_model():
    """--tokenizer train makes its own vocabulary, so --model's word vectors cannot be read by its ids: the run
    records word_vectors false, and asking for them is refused."""
    model, _, _ = parse_values({**BASE, "arch": "lstm", "tokenizer": "train"})
    assert model.word_vectors is False
    assert parse_values({**BASE, "arch": "lstm", "tokenizer": "train", "word_vectors": False})[0].word_vectors is False
    with pytest.raises(HfclfInputError, match="--word_vectors reads --model's word vectors by its tokenizer's ids"):
        parse_values({**BASE, "arch": "lstm", "tokenizer": "train"}, ["--word_vectors", "true"])


def test_an_embedding_size_beside_the_models_word_vectors_is_refused():
    """The LSTM reads --model's word vectors (their own width) by default, so --embedding_dim (or the same field in
    --config_overrides) had no effect and no word; it is refused. Without word vectors it sizes them."""
    for given in ({"embedding_dim": 64}, {"config_overrides": "embedding_dim=64"}):
        refused = r"embedding_dim \(--embedding_dim, or in --config_overrides or --model_config\) sizes word vectors"
        with pytest.raises(HfclfInputError, match=refused):
            parse_values({**BASE, "arch": "lstm", **given})
        for without in ({"word_vectors": False}, {"tokenizer": "train"}):
            assert parse_values({**BASE, "arch": "lstm", **given, **without})[0].config_fields()["embedding_dim"] == 64


def test_metric_for_best_model_is_read_without_its_eval_prefix():
    """transformers takes `eval_f1_macro` as well as `f1_macro`; a search scores trials by the run's eval metric of
    that name, so both spellings name one metric."""
    for name in ("f1_macro", "eval_f1_macro"):
        assert parse_values({**BASE, "metric_for_best_model": name})[2].metric_for_best_model == "f1_macro"


def test_run_settings_compare_values_not_spellings():
    """A resume (or rerun) is checked against the values a run was made with, not how they were written: an
    unset and an empty mapping are the same, and so are 0.50 and .5 as a threshold."""
    from hfclf.run_folder import check_same_settings
    from hfclf.training_args import run_settings

    base = {"dataset": "sst2", "output_dir": "runs/x"}
    made = run_settings(*parse_values({**base, "threshold": "0.50"}))
    check_same_settings(made, run_settings(*parse_values({**base, "threshold": ".5", "lr_scheduler_kwargs": {}})),
                        "Checkpoint c", "fix")  # fmt: skip
    other = run_settings(*parse_values({**base, "threshold": "0.6", "output_dir": "elsewhere"}))
    with pytest.raises(
        HfclfInputError, match=r"^Checkpoint c was made with other settings: --threshold 0.5 \(now 0.6\)"
    ):
        check_same_settings(made, other, "Checkpoint c", "fix")


@pytest.mark.parametrize(
    "flags, greater",
    [
        ([], True),
        (["--metric_for_best_model", "mae"], False),
        (["--metric_for_best_model", "eval_hamming_loss"], False),
        (["--metric_for_best_model", "f1_macro"], True),
        (["--metric_for_best_model", "mae", "--greater_is_better", "true"], True),
    ],
)
def test_a_metric_where_lower_is_better_picks_the_lowest(flags, greater):
    """`Trainer` takes every metric but a loss as higher-is-better: --metric_for_best_model mae kept the worst."""
    training_args = parse_args(["--dataset", "sst2", "--output_dir", "unused", *flags])[2]
    assert training_args.greater_is_better is greater


@pytest.mark.parametrize(
    "values, refused",
    [
        ({"lora_r": 0}, "--lora-r must be a positive rank, got 0"),
        (
            {"lora_alpha": 0},
            "--lora-alpha must be positive, got 0",
        ),  # scale alpha / r = 0: an adapter that does nothing
        ({"lora_alpha": -4}, "--lora-alpha must be positive, got -4"),
        ({"lora_dropout": 1.5}, r"--lora-dropout must be from 0 to below 1, got 1.5"),  # was a peft traceback
        ({"lora_dropout": -0.1}, r"--lora-dropout must be from 0 to below 1, got -0.1"),
    ],
)
def test_lora_values_are_checked_before_anything_runs(values, refused):
    with pytest.raises(HfclfInputError, match=refused):
        parse_values({**BASE, "lora": True, **values})
    assert parse_values({**BASE, "lora": True, "lora_alpha": 8, "lora_dropout": 0.0})[0].lora_dropout == 0.0


def test_a_command_line_flag_may_not_set_what_the_runs_differ_in():
    """`hfclf compare c.yaml --seed 5` trained every seed of the grid with seed 5 (identical runs, reported as a seed
    spread); `hfclf search s.yaml --learning_rate 0.05` trained every trial at 0.05 while the study recorded the
    sampled rates."""
    from hfclf.training_args import check_flags_keep_the_axes

    comparison = {
        "variants": [{"name": "a", "pooling": "max"}, {"name": "b", "pooling": "mean"}],
        "grid": {"seed": [1]},
    }
    for words, axis in ((["--seed", "5"], "seed"), (["--pooling=cls"], "pooling"), (["--num-train-epochs", "1"], None)):
        if axis is None:
            check_flags_keep_the_axes(comparison, words, "compare")  # a flag common to every variant is fine
            continue
        with pytest.raises(HfclfInputError, match=f"^--{axis} is what the comparison's variants differ in"):
            check_flags_keep_the_axes(comparison, words, "compare")
    study = {"search": {"params": {"learning_rate": {"low": 1e-4, "high": 1e-2}, "word_vectors": [True, False]}}}
    for words, axis in ((["--learning_rate", "0.05"], "learning_rate"), (["--no_word_vectors"], "word_vectors")):
        with pytest.raises(HfclfInputError, match=f"^--{axis} is a searched param.*drop {words[0]}, or change"):
            check_flags_keep_the_axes(study, words, "search")
