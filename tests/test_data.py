import gzip
import json
import logging
import os

import datasets
import numpy as np
import pandas as pd
import pytest

from hfclf.architectures import resolve_model_name
from hfclf.data.loading import DATASETS, DataArguments, load_raw_datasets
from hfclf.data.tokenization import WORDPIECE_SPECIAL_TOKENS, tokenize_datasets, train_wordpiece_tokenizer
from hfclf.errors import HfclfInputError


def make_frame(num_rows=200, num_classes=2, seed=0):
    """Texts with string labels, 75% of them in the first class."""
    rng = np.random.default_rng(seed)
    names = [f"class_{i}" for i in range(num_classes)]
    weights = np.array([3.0] + [1.0] * (num_classes - 1))
    labels = rng.choice(names, size=num_rows, p=weights / weights.sum())
    return pd.DataFrame({"text": [f"example {i} about {label}" for i, label in enumerate(labels)], "label": labels})


def write(df, path, **kwargs):
    name = path.name.removesuffix(".gz")
    if name.endswith(".csv"):
        df.to_csv(path, index=False, **kwargs)
    elif name.endswith(".tsv"):
        df.to_csv(path, sep="\t", index=False, quoting=3, **kwargs)
    elif name.endswith(".jsonl"):
        df.to_json(path, orient="records", lines=True, **kwargs)
    elif name.endswith(".json"):
        df.to_json(path, orient="records", **kwargs)
    elif name.endswith(".parquet"):
        if path.name.endswith(".gz"):
            with gzip.open(path, "wb") as f:
                df.to_parquet(f, index=False)
        else:
            df.to_parquet(path, index=False)
    return str(path)


@pytest.mark.parametrize(
    "file_name",
    ["d.csv", "d.csv.gz", "d.tsv", "d.tsv.gz", "d.json", "d.jsonl", "d.json.gz", "d.parquet", "d.parquet.gz"],
)
def test_file_types(tmp_path, file_name):
    df = pd.DataFrame({"sentence": ['a "quoted" text', "NA", "second, with comma"], "label": [0, 1, 0]})
    if file_name == "d.json.gz":
        # JSON lines under a .json name, gzipped by hand.
        path = tmp_path / file_name
        with gzip.open(path, "wt") as f:
            f.write("\n".join(json.dumps(record) for record in df.to_dict("records")))
        path = str(path)
    else:
        path = write(df, tmp_path / file_name)
    raw = load_raw_datasets(DataArguments(train_file=path, validation_file=path))
    assert raw["train"]["text"][:] == ['a "quoted" text', "NA", "second, with comma"]
    assert raw["train"]["label"][:] == [0, 1, 0]
    assert raw["train"].features["label"].names == ["0", "1"]
    assert raw["train"].features["text"] == datasets.Value("string")


@pytest.mark.parametrize("file_name", ["d.csv", "d.tsv", "d.json", "d.jsonl", "d.json.gz"])
def test_a_byte_order_mark_is_skipped(tmp_path, file_name):
    """Files saved as "UTF-8 with BOM" (Windows editors, PowerShell) read like any other: the mark is not part of
    the first column's name, and a JSON array is still told from JSON lines."""
    records = [{"sentence": "a fine film", "label": "pos"}, {"sentence": "dull", "label": "neg"}]
    text = {
        "csv": "sentence,label\na fine film,pos\ndull,neg\n",
        "tsv": "sentence\tlabel\na fine film\tpos\ndull\tneg\n",
        "json": json.dumps(records),
        "jsonl": "\n".join(json.dumps(record) for record in records),
    }[file_name.removesuffix(".gz").split(".")[1]]
    path = tmp_path / file_name
    with (gzip.open if file_name.endswith(".gz") else open)(path, "wt", encoding="utf-8-sig") as f:
        f.write(text)
    raw = load_raw_datasets(DataArguments(train_file=str(path), validation_file=str(path)))
    assert raw["train"]["text"][:] == ["a fine film", "dull"]
    assert raw["train"].features["label"].names == ["neg", "pos"]


def test_text_columns_joined_and_string_labels(tmp_path):
    df = pd.DataFrame({"title": ["T1", "T2", "T3"], "body": ["b1", "b2", "b3"], "topic": ["sports", "world", "sports"]})
    path = write(df, tmp_path / "train.csv")
    args = DataArguments(
        train_file=path,
        test_file=path,
        text_columns="title, body",
        label_column="topic",
        text_separator=". ",
        validation_fraction=0,
    )
    raw = load_raw_datasets(args)
    assert list(raw) == ["train", "test"]
    assert raw["train"].column_names == ["text", "label"]
    assert raw["train"]["text"][:] == ["T1. b1", "T2. b2", "T3. b3"]
    assert raw["train"].features["label"].names == ["sports", "world"]
    assert raw["test"]["label"][:] == [0, 1, 0]


def test_a_multi_label_validation_split_is_drawn_at_random_without_a_warning(tmp_path, caplog):
    rows = {"text": [f"text {i}" for i in range(20)], "labels": ["a;b", "a", "b", "c"] * 5}
    path = write(pd.DataFrame(rows), tmp_path / "train.csv")
    caplog.set_level("INFO", logger="hfclf")
    raw = load_raw_datasets(DataArguments(train_file=path, label_column="labels", validation_fraction=0.25))
    assert (len(raw["train"]), len(raw["validation"])) == (15, 5)
    assert "Stratified split impossible" not in caplog.text


def test_regression_splits_are_drawn_at_random_without_a_warning(tmp_path, caplog):
    """Regression values are not classes to stratify by (scikit-learn would call each distinct score a class)."""
    rows = {"text": [f"text {i}" for i in range(40)], "score": [i / 7 for i in range(40)]}
    path = write(pd.DataFrame(rows), tmp_path / "train.csv")
    caplog.set_level("INFO", logger="hfclf")
    args = DataArguments(train_file=path, validation_fraction=0.25, train_fraction=0.5, problem_type="regression")
    raw = load_raw_datasets(args)
    assert (len(raw["train"]), len(raw["validation"])) == (15, 10)
    assert "Stratified split impossible" not in caplog.text


def test_a_missing_label_column_suggests_the_0_1_columns(tmp_path):
    rows = {"text": ["a", "b", "c"], "joy": [1, 0, 1], "anger": [0, 0, 1], "note": ["x", "y", "z"]}
    path = write(pd.DataFrame(rows), tmp_path / "test.csv")
    with pytest.raises(HfclfInputError) as err:
        load_raw_datasets(DataArguments(train_file=path))
    assert str(err.value) == (
        f"No label column found in train file {path} (columns: text, joy, anger, note). Pass --label-column with "
        "one of those, or --label-columns joy,anger (one 0/1 column per label)."
    )


def test_the_detected_classes_are_counted_in_the_training_split(caplog):
    """A user's train file with classes 1..4 next to a named dataset's test file with ids 0..3: 4 classes, not 5."""
    from hfclf.data.labels import detect_problem_type

    caplog.set_level("INFO", logger="hfclf")
    frames = {"train": (pd.DataFrame({"label": [1, 2, 3, 4]}), "train"), "test": (pd.DataFrame({"label": [0, 3]}), "")}
    detect_problem_type(frames)
    assert "each example has one of 4 classes" in caplog.text


def test_integer_labels_keep_their_names(tmp_path, caplog):
    """Labels 1..4 are classes named 1..4 (ids 0..3): the model's labels are the data's, so nothing is guessed."""
    caplog.set_level("INFO", logger="hfclf")
    df = pd.DataFrame({"text": list("abcdefgh"), "label": [1, 2, 3, 4, 1, 2, 3, 4]})
    path = write(df, tmp_path / "train.csv")
    raw = load_raw_datasets(DataArguments(train_file=path, validation_file=path))
    assert raw["validation"]["label"][:] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert raw["validation"].features["label"].names == ["1", "2", "3", "4"]
    assert "Labels 1..4 are class names: class ids 0..3 stand for them in sorted order." in caplog.text


def test_integer_labels_read_against_a_model_are_not_said_to_become_ids(tmp_path, caplog):
    """`hfclf eval` reads ratings 3 and 9 and then matches them to the model's classes by name; the data's own ids
    (0 and 1) are no mapping a user needs to hear of."""
    caplog.set_level("INFO", logger="hfclf")
    path = write(pd.DataFrame({"text": ["a", "b"], "label": [3, 9]}), tmp_path / "test.csv")
    raw = load_raw_datasets(DataArguments(test_file=path), need_train=False, task_source="the model in m")
    assert raw["test"].features["label"].names == ["3", "9"]
    assert "stand for them" not in caplog.text


def test_unseen_label_error_names_the_label(tmp_path):
    train = write(pd.DataFrame({"text": ["a", "b"], "label": ["pos", "neg"]}), tmp_path / "train.csv")
    test = write(pd.DataFrame({"text": ["c", "d"], "label": ["pos", "neutral"]}), tmp_path / "test.csv")
    with pytest.raises(HfclfInputError, match="neutral"):
        load_raw_datasets(DataArguments(train_file=train, validation_file=train, test_file=test))


def test_missing_column_error_lists_columns(tmp_path):
    path = write(pd.DataFrame({"review": ["a"], "label": [0]}), tmp_path / "train.csv")
    with pytest.raises(HfclfInputError, match=r"Column 'body' not found .*columns: review, label.*--text-columns"):
        load_raw_datasets(DataArguments(train_file=path, text_columns="body"))
    path = write(pd.DataFrame({"words": ["a"], "y": [0]}), tmp_path / "other.csv")
    with pytest.raises(HfclfInputError, match=r"No text column .*columns: words, y"):
        load_raw_datasets(DataArguments(train_file=path))
    with pytest.raises(HfclfInputError, match=r"No label column .*--label-column"):
        load_raw_datasets(DataArguments(train_file=path, text_columns="words"))
    with pytest.raises(HfclfInputError) as named_columns:
        load_raw_datasets(DataArguments(train_file=path))
    assert "looks like data" not in str(named_columns.value)

    # a file without a header row (AG News' own csv): its first row is taken as the header, and the error says so
    headerless = tmp_path / "ag.csv"
    headerless.write_text(
        '"3","Fears for pension","Unions say they are disappointed"\n"4","Race is on","A second team"\n'
    )
    with pytest.raises(HfclfInputError, match=r"No text column .*columns: 3, .*looks like data, not column names"):
        load_raw_datasets(DataArguments(train_file=str(headerless)))


def test_empty_text_and_missing_label_errors(tmp_path):
    path = write(pd.DataFrame({"text": ["ok", "  ", "fine", None], "label": [0, 1, 0, 1]}), tmp_path / "a.csv")
    with pytest.raises(HfclfInputError, match=r"2 rows .* empty text \(first at row index 1\)"):
        load_raw_datasets(DataArguments(train_file=path))
    path = write(pd.DataFrame({"text": ["ok", "b", "c"], "label": [0, None, 1]}), tmp_path / "b.csv")
    with pytest.raises(HfclfInputError, match=r"1 rows .* no label \(first at row index 1\)"):
        load_raw_datasets(DataArguments(train_file=path))


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_a_file_with_a_header_only_is_one_clear_error(tmp_path, split):
    rows = write(pd.DataFrame({"text": ["a", "b", "c", "d"], "label": [0, 1, 0, 1]}), tmp_path / "rows.csv")
    header = tmp_path / "header.csv"
    header.write_text("text,label\n")
    files = {"train_file": rows, "validation_file": rows, "test_file": rows, f"{split}_file": header}
    with pytest.raises(HfclfInputError, match=f"^The {split} file {header} has no rows"):
        load_raw_datasets(DataArguments(**files))


def test_rows_with_more_fields_than_the_header_are_refused(tmp_path):
    """An unquoted comma in a text: pandas would make the first field an index (every row) or drop data."""
    from hfclf.inference.predict import read_texts

    every_row = tmp_path / "every_row.csv"
    every_row.write_text("text\nthanks so much, I love it\nthis is awful, really\n")
    one_row = tmp_path / "one_row.csv"
    one_row.write_text("text,label\ngood,1\nbad, awful,0\nfine,1\n")
    expected = "has rows with more fields than its header"
    with pytest.raises(HfclfInputError, match=f"{expected} .*quote the texts that contain a comma"):
        read_texts(str(every_row))
    with pytest.raises(HfclfInputError, match=f"{expected} .*Expected 2 fields in line 3, saw 3"):
        load_raw_datasets(DataArguments(train_file=str(one_row)))


def test_file_errors(tmp_path):
    with pytest.raises(HfclfInputError, match=r"Unsupported type .*\.csv, \.tsv, \.json, \.jsonl, \.parquet"):
        load_raw_datasets(DataArguments(train_file=str(tmp_path / "data.xlsx")))
    with pytest.raises(HfclfInputError, match="does not exist"):
        load_raw_datasets(DataArguments(train_file=str(tmp_path / "missing.csv")))
    with pytest.raises(HfclfInputError, match="No training data"):
        load_raw_datasets(DataArguments())
    for bad in ({"train_fraction": 0.0}, {"validation_fraction": 1.0}, {"max_train_samples": 0}):
        with pytest.raises(HfclfInputError):
            load_raw_datasets(DataArguments(dataset="sst2", **bad))


def test_errors_are_one_line(tmp_path):
    path = write(pd.DataFrame({"review": ["a"], "label": [0]}), tmp_path / "train.csv")
    with pytest.raises(HfclfInputError) as info:
        load_raw_datasets(DataArguments(train_file=path, label_column="y"))
    assert "\n" not in str(info.value)


def test_train_fraction_is_stratified_and_reproducible(tmp_path):
    path = write(make_frame(400), tmp_path / "train.csv")

    def load(seed, fraction=0.25):
        return load_raw_datasets(DataArguments(train_file=path, train_fraction=fraction), seed=seed)

    full, a, b, c = load(0, 1.0), load(0), load(0), load(1)
    assert len(full["train"]) == 360 and len(full["validation"]) == 40
    assert len(a["train"]) == 90
    # Same seed, same rows; validation does not depend on train_fraction.
    assert a["train"]["text"][:] == b["train"]["text"][:]
    assert a["validation"]["text"][:] == full["validation"]["text"][:]
    assert a["train"]["text"][:] != c["train"]["text"][:]
    full_share = np.mean(np.array(full["train"]["label"][:]) == 0)
    for split in (a["train"], a["validation"]):
        assert abs(np.mean(np.array(split["label"][:]) == 0) - full_share) < 0.02


def test_max_samples(tmp_path):
    path = write(make_frame(100), tmp_path / "train.csv")
    args = DataArguments(train_file=path, test_file=path, max_train_samples=10, max_eval_samples=5, max_test_samples=7)
    raw = load_raw_datasets(args, seed=3)
    assert {split: len(ds) for split, ds in raw.items()} == {"train": 10, "validation": 5, "test": 7}
    # A seeded shuffle, not the first rows of the file.
    assert raw["test"]["text"][:] != [f"example {i}" for i in range(7)]
    assert raw["test"]["text"][:] == load_raw_datasets(args, seed=3)["test"]["text"][:]


def test_a_limit_above_the_data_says_so(tmp_path, caplog):
    """--max_train_samples 2000 on 100 examples trains on the 100, and says so: a data-size curve's two largest
    points would otherwise be the same run under two names."""
    path = write(make_frame(100), tmp_path / "train.csv")
    caplog.set_level("WARNING", logger="hfclf")
    raw = load_raw_datasets(DataArguments(train_file=path, max_train_samples=2000, max_eval_samples=5), seed=3)
    assert len(raw["train"]) == 90 and len(raw["validation"]) == 5
    assert caplog.messages == ["--max_train_samples 2,000 is above the 90 train examples: all of them are used."]


def test_tokenize_datasets_no_padding(tmp_path, minilm_tokenizer):
    df = pd.DataFrame({"text": ["short", "a somewhat longer sentence with more words", "x " * 100], "label": [0, 1, 0]})
    path = write(df, tmp_path / "train.csv")
    raw = load_raw_datasets(DataArguments(train_file=path, validation_file=path))
    tokenized, stats = tokenize_datasets(raw, minilm_tokenizer, max_length=16)
    train = tokenized["train"]
    assert {"input_ids", "attention_mask", "length", "label"} <= set(train.column_names)
    assert "text" not in train.column_names
    lengths = train["length"][:]
    assert lengths == [len(ids) for ids in train["input_ids"][:]]
    assert lengths[0] < lengths[1] < lengths[2] == 16
    assert set(stats) == {
        "max_length",
        "tokenize_seconds",
        "tokenize_examples_per_second",
        "tokenize_tokens_per_second",
        "tokenize_from_cache",
    }
    assert stats["tokenize_from_cache"] is False and stats["max_length"] == 16
    assert stats["tokenize_examples_per_second"] > 0


def test_wordpiece_round_trip(tmp_path):
    from transformers import AutoTokenizer

    texts = datasets.Dataset.from_dict({"text": ["the quick brown fox", "jumps over the lazy dog", "Hello World"] * 20})
    tokenizer = train_wordpiece_tokenizer(texts, vocab_size=100)
    tokenizer.save_pretrained(tmp_path / "tok")
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "tok")
    encoded = reloaded("hello the fox")
    tokens = reloaded.convert_ids_to_tokens(encoded["input_ids"])
    assert tokens == ["[CLS]", "hello", "the", "fox", "[SEP]"]
    assert reloaded.pad_token == "[PAD]" and reloaded.pad_token_id == 0
    assert reloaded.mask_token == "[MASK]" and reloaded.unk_token == "[UNK]"
    batch = reloaded(["the", "the quick brown fox"], padding=True)
    assert batch["input_ids"][0][-1] == reloaded.pad_token_id
    # A plain iterator of strings works too.
    assert len(train_wordpiece_tokenizer(iter(texts["text"][:]), vocab_size=100)) == len(tokenizer)


def test_a_trained_vocabulary_is_the_same_every_time(data_dir, tmp_path):
    """The same texts give the same WordPiece vocabulary, in one process and in another (tokenizers' own trainer
    breaks ties by hash-map order: a run, its resume and each distributed process would each get other ids)."""
    import subprocess
    import sys

    texts = pd.read_csv(data_dir / "sst2" / "train.tsv.gz", sep="\t", quoting=3, keep_default_na=False)
    texts = texts.iloc[:2000, 0].tolist()
    vocabularies = {json.dumps(train_wordpiece_tokenizer(texts).get_vocab(), sort_keys=True) for _ in range(3)}
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    script = (
        "import json, sys; from hfclf.data.tokenization import train_wordpiece_tokenizer; "
        "texts = json.load(open(sys.argv[1])); "
        "print(json.dumps(train_wordpiece_tokenizer(texts).get_vocab(), sort_keys=True))"
    )
    other = subprocess.run([sys.executable, "-c", script, tmp_path / "texts.json"], capture_output=True, text=True)
    vocabularies.add(other.stdout.strip())
    assert len(vocabularies) == 1 and len(json.loads(vocabularies.pop())) > 5000


def naive_wordpiece_vocabulary(word_counts, vocab_size, special_tokens):
    """The same learning, recounting every pair after every merge."""
    vocab = list(special_tokens)
    words = {tuple([word[0], *("##" + c for c in word[1:])]): count for word, count in word_counts.items()}
    pieces = sorted({piece for word in words for piece in word}, key=lambda piece: (piece[:2] == "##", piece))
    vocab += [piece for piece in pieces if piece not in vocab]
    while len(vocab) < vocab_size:
        pairs = {}
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] = pairs.get(pair, 0) + count
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        token = best[0] + best[1][2:]
        if token not in vocab:
            vocab.append(token)
        merged = {}
        for word, count in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(token)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + count
        words = merged
    return {token: i for i, token in enumerate(vocab)}


def test_the_wordpiece_merges_are_those_of_a_naive_recount():
    """Random small corpora (repeated pairs like `aaaa`, one-letter words, an empty one): the incremental merges give
    the vocabulary of recounting every pair after every merge, ties to the pair that sorts first."""
    import random
    from collections import Counter

    from hfclf.data.tokenization import wordpiece_vocabulary

    rng = random.Random(0)
    assert wordpiece_vocabulary(Counter(), 10) == {token: i for i, token in enumerate(WORDPIECE_SPECIAL_TOKENS)}
    for _ in range(200):
        letters = "ab" if rng.random() < 0.5 else "abc"
        words = Counter({"".join(rng.choice(letters) for _ in range(rng.randint(1, 6))): rng.randint(1, 4)
                         for _ in range(rng.randint(1, 12))})  # fmt: skip
        size = rng.randint(3, 40)
        assert wordpiece_vocabulary(words, size, ("[UNK]",)) == naive_wordpiece_vocabulary(words, size, ("[UNK]",))


def test_model_aliases():
    path = resolve_model_name("minilm")
    assert os.path.isfile(os.path.join(path, "tokenizer.json"))
    assert resolve_model_name("bert-base-uncased") == "bert-base-uncased"


def test_unknown_dataset():
    with pytest.raises(HfclfInputError, match=r"Unknown dataset 'sst3'.*ag_news, imdb, sst2, rt_polarity.*--test-file"):
        load_raw_datasets(DataArguments(dataset="sst3"))


def test_offline_without_local_copy_names_both_fixes(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(HfclfInputError) as info:
        load_raw_datasets(DataArguments(dataset="imdb", data_dir=str(tmp_path)))
    message = str(info.value)
    assert "HFCLF_DATA_DIR or --data-dir" in message and "imdb/train.csv.gz" in message
    assert "go online" in message and "stanfordnlp/imdb" in message


def test_named_dataset_without_train_split(tmp_path):
    (tmp_path / "ag_news").mkdir()
    df = pd.DataFrame({"c": [1, 2, 3, 4], "t": ["w", "s", "b", "t"], "d": ["x", "y", "z", "q"]})
    df.to_csv(tmp_path / "ag_news" / "test.csv.gz", header=False, index=False)
    args = DataArguments(dataset="ag_news", data_dir=str(tmp_path))
    with pytest.raises(HfclfInputError, match="no train split.*--train-file"):
        load_raw_datasets(args)
    raw = load_raw_datasets(args, need_train=False)
    assert list(raw) == ["test"]
    assert raw["test"]["text"][:] == ["w x", "s y", "b z", "t q"]
    assert raw["test"]["label"][:] == [0, 1, 2, 3]
    # The suggested fix: bring your own training file, labelled with class names or ids.
    train = write(
        pd.DataFrame({"text": ["a", "b", "c", "d"] * 5, "label": list(DATASETS["ag_news"].label_names) * 5}),
        tmp_path / "train.csv",
    )
    raw = load_raw_datasets(DataArguments(dataset="ag_news", data_dir=str(tmp_path), train_file=train))
    assert list(raw) == ["train", "validation", "test"]
    assert raw["train"].features["label"].names == ["World", "Sports", "Business", "Sci/Tech"]


def test_named_dataset_from_the_hub(tmp_path, monkeypatch):
    # What `load_dataset("stanfordnlp/sst2")` returns, in miniature: its test split is unlabeled.
    def fake_load_dataset(path):
        assert path == "stanfordnlp/sst2"
        split = {"idx": [0, 1, 2], "sentence": ["good", "bad", "fine"], "label": [1, 0, 1]}
        unlabeled = {"idx": [0], "sentence": ["?"], "label": [-1]}
        return datasets.DatasetDict(
            train=datasets.Dataset.from_dict(split),
            validation=datasets.Dataset.from_dict(split),
            test=datasets.Dataset.from_dict(unlabeled),
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    raw = load_raw_datasets(DataArguments(dataset="sst2", data_dir=str(tmp_path)))
    assert list(raw) == ["train", "validation", "test"]
    assert raw["test"]["text"][:] == ["good", "bad", "fine"]
    assert raw["test"].features["label"].names == ["negative", "positive"]


def test_named_dataset_labels_out_of_range(tmp_path):
    (tmp_path / "sst2").mkdir()
    train = write(pd.DataFrame({"text": ["a", "b"], "label": [0, 7]}), tmp_path / "train.csv")
    with pytest.raises(HfclfInputError, match=r"labels outside 0\.\.1 \(negative, positive\): 7"):
        load_raw_datasets(
            DataArguments(dataset="sst2", data_dir=str(tmp_path), train_file=train, validation_file=train)
        )


@pytest.mark.data
def test_sst2(data_dir):
    raw = load_raw_datasets(DataArguments(dataset="sst2", data_dir=str(data_dir)))
    assert {split: len(ds) for split, ds in raw.items()} == {"train": 67_349, "validation": 872, "test": 1_821}
    assert raw["train"].features["label"].names == ["negative", "positive"]
    assert raw["train"][0] == {"text": "hide new secretions from the parental units", "label": 0}
    assert np.bincount(raw["validation"]["label"][:]).tolist() == [428, 444]


@pytest.mark.data
def test_ag_news_evaluation_only(data_dir, monkeypatch):
    monkeypatch.setenv("HFCLF_DATA_DIR", str(data_dir))
    raw = load_raw_datasets(DataArguments(dataset="ag_news"), need_train=False)
    assert list(raw) == ["test"]
    test = raw["test"]
    assert len(test) == 7_600
    assert test.features["label"].names == ["World", "Sports", "Business", "Sci/Tech"]
    assert np.bincount(test["label"][:]).tolist() == [1_900] * 4
    assert test[0]["text"].startswith("Fears for T N pension after talks Unions representing")
    assert test[0]["label"] == 2


@pytest.mark.data
def test_imdb(data_dir):
    raw = load_raw_datasets(DataArguments(dataset="imdb", data_dir=str(data_dir), max_train_samples=100), seed=0)
    assert {split: len(ds) for split, ds in raw.items()} == {"train": 100, "validation": 2_500, "test": 25_000}
    assert raw["test"].features["label"].names == ["neg", "pos"]
    assert np.bincount(raw["test"]["label"][:]).tolist() == [12_500, 12_500]


def test_tokenization_cache_is_reused_and_keyed_by_tokenizer(tmp_path, minilm_tokenizer):
    raw = datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"text": ["a good film", "a bad one", "fine"], "label": [1, 0, 1]})}
    )
    tokenizer = minilm_tokenizer
    cache = tmp_path / "cache"
    first, stats = tokenize_datasets(raw, tokenizer, max_length=16, cache_dir=str(cache))
    assert not stats["tokenize_from_cache"]
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 1
    again, stats = tokenize_datasets(raw, tokenizer, max_length=16, cache_dir=str(cache))
    assert stats["tokenize_from_cache"]
    assert again["train"]["input_ids"] == first["train"]["input_ids"]
    assert sorted(p.name for p in cache.iterdir()) == files  # loaded, not written again
    # another max_length (or tokenizer) is another cache entry
    _, stats = tokenize_datasets(raw, tokenizer, max_length=4, cache_dir=str(cache))
    assert not stats["tokenize_from_cache"] and len(list(cache.iterdir())) == 2
    # several tokenizing processes write one cache shard each, and a later run finds them
    _, stats = tokenize_datasets(raw, tokenizer, max_length=8, cache_dir=str(cache), num_proc=2)
    assert not stats["tokenize_from_cache"] and len(list(cache.iterdir())) == 4
    _, stats = tokenize_datasets(raw, tokenizer, max_length=8, cache_dir=str(cache), num_proc=2)
    assert stats["tokenize_from_cache"] and len(list(cache.iterdir())) == 4


def test_the_tokenizer_is_hashed_once_per_tokenization(tmp_path, minilm_tokenizer, monkeypatch):
    """Hashing a tokenizer pickles its whole vocabulary (about 0.7 s for BERT's): `datasets` did it again for the
    function of every split's `map`, 3 of the 5 s of a tiny run. It is hashed once, for the cache key."""
    import copy

    from datasets.utils import _dill

    hashed = []
    save = _dill._save_transformersPreTrainedTokenizerBase
    monkeypatch.setattr(_dill, "_save_transformersPreTrainedTokenizerBase", lambda p, o: hashed.append(o) or save(p, o))
    tokenizer = copy.copy(minilm_tokenizer)  # a class of its own: `datasets` registers the counting saver for it
    tokenizer.__class__ = type("CountedTokenizer", (type(minilm_tokenizer),), {})
    splits = {
        split: {"text": ["a good film", f"a bad {split}"], "label": [1, 0]} for split in ("train", "validation", "test")
    }
    raw = datasets.DatasetDict({split: datasets.Dataset.from_dict(columns) for split, columns in splits.items()})
    for cache_dir in (None, str(tmp_path / "cache")):
        hashed.clear()
        tokenized, _ = tokenize_datasets(raw, tokenizer, max_length=16, cache_dir=cache_dir)
        assert len(hashed) == 1
        assert tokenized["test"]["input_ids"][:] == minilm_tokenizer(["a good film", "a bad test"])["input_ids"]
    fingerprints = {split: ds._fingerprint for split, ds in tokenized.items()}
    assert len(set(fingerprints.values())) == 3 and fingerprints == {
        split: ds._fingerprint for split, ds in tokenize_datasets(raw, tokenizer, max_length=16)[0].items()
    }  # each split's result has a fingerprint of its own, the same on every run
    assert tokenize_datasets(raw, tokenizer, max_length=8)[0]["test"]._fingerprint != fingerprints["test"]


def test_lists_of_classes_under_single_label_name_multi_label(tmp_path):
    """Labels that are lists under --problem_type single_label_classification (or a multi-label named dataset) are
    refused with the shape they have, not as unknown classes."""
    path = tmp_path / "train.csv"
    path.write_text('text,label\na,"[""x"", ""y""]"\nb,x\nc,y\n')
    with pytest.raises(HfclfInputError, match=r"lists of classes .*pass --problem_type multi_label_classification\.$"):
        load_raw_datasets(DataArguments(train_file=str(path), problem_type="single_label_classification"))
    with pytest.raises(HfclfInputError, match=r"^go_emotions is multi-label classification .*drop --problem_type\.$"):
        load_raw_datasets(DataArguments(dataset="go_emotions", problem_type="regression"))


def test_every_file_reads_the_columns_of_the_first(tmp_path, caplog):
    """The text and label columns guessed in the train file are every split's: a validation file that also has a
    `text` column (say, ids) is read by the train file's text column, and one without it is refused."""
    caplog.set_level(logging.INFO, logger="hfclf")
    train = write(pd.DataFrame({"review": ["good film", "bad film"], "label": ["pos", "neg"]}), tmp_path / "t.csv")
    both = pd.DataFrame({"text": ["ID-1", "ID-2"], "review": ["great film", "awful film"], "label": ["pos", "neg"]})
    raw = load_raw_datasets(DataArguments(train_file=train, validation_file=write(both, tmp_path / "v.csv")))
    assert raw["validation"]["text"] == ["great film", "awful film"]
    assert caplog.text.count("Using column 'review' as the text") == 1
    other = write(pd.DataFrame({"text": ["great film"], "label": ["pos"]}), tmp_path / "other.csv")
    with pytest.raises(
        HfclfInputError, match=r"^Column 'review' \(as in train file .*t\.csv\) not found in validation"
    ):
        load_raw_datasets(DataArguments(train_file=train, validation_file=other))


@pytest.mark.parametrize("max_length, head", [(512, 128), (258, 128), (128, 63), (64, 31), (4, 1)])
def test_head_tail_keeps_room_for_a_tail_by_default(max_length, head):
    """Sun et al.'s 128 head tokens of 512; a shorter input keeps as much of its end as of its start."""
    assert DataArguments(dataset="imdb", long_text="head_tail", max_length=max_length).head_tokens == head
    assert DataArguments(dataset="imdb", max_length=max_length).head_tokens == 128  # unread: as runs recorded it
