"""Tokenization: batched fast tokenizers over every split, with the long-text strategies and a cache; and a
WordPiece vocabulary trained on the training data for the models trained from scratch."""

import heapq
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Optional, Union

import datasets
import numpy as np

from ..errors import HfclfInputError
from .loading import column_array
from .scoring import multi_hot_rows

logger = logging.getLogger("hfclf.data.loading")

WORDPIECE_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclass(frozen=True)
class LongText:
    """How texts longer than `max_length` tokens are handled (see `DataArguments.long_text`)."""

    strategy: str = "truncate"  # truncate | head_tail | windows
    head_tokens: int = 128  # head_tail: tokens kept from the start; the rest of the budget comes from the end
    stride: int = 128  # windows: tokens shared by consecutive windows


def tokenize_datasets(
    raw: datasets.DatasetDict,
    tokenizer,
    max_length: int = 128,
    num_proc: Optional[int] = None,
    cache_dir: Optional[str] = None,
    long_text: LongText = LongText(),
) -> tuple[datasets.DatasetDict, dict[str, float]]:
    """
    Tokenize every split with a fast tokenizer, at most `max_length` tokens per example and without padding.

    `text` (and `text_pair`, tokenized with `text` as a pair: separator tokens, segment ids, the longer text
    truncated first) become the tokenizer outputs (`input_ids`, `attention_mask`, ...) plus a `length` column (tokens
    per example, used by `group_by_length`). `label` stays: a class id, a multi-hot float vector (multi-label) or a
    float (regression). Longer texts follow `long_text`: the start, the start and end, or overlapping windows, one
    example each with the document's label and a `doc_id` column (the document's row). Padding is left to the
    data collator.

    With `cache_dir`, the tokenized splits are cached there as Arrow files keyed by the data's fingerprint
    (a hash of its content), the tokenizer, `max_length` and `long_text`, and a later run on the same data loads
    them.

    Returns `(tokenized, stats)`, where `stats` has `max_length` (after capping at the tokenizer's limit),
    `tokenize_seconds`, `tokenize_examples_per_second`, `tokenize_tokens_per_second` over all splits, and
    `tokenize_from_cache`.
    """
    from datasets.fingerprint import Hasher

    max_length = _capped_length(tokenizer, max_length)
    first = next(iter(raw.values()))
    encode = _encoder(tokenizer, max_length, long_text, first.features["label"])
    # Hashed once: hashing a tokenizer (its whole vocabulary) takes most of a second, and `map` would hash the
    # function that holds it again for every split unless given the fingerprint of its result.
    key = Hasher.hash((tokenizer, max_length, long_text))
    cache_files = _cache_files(raw, key, cache_dir)
    # With num_proc > 1, `datasets` writes one shard per process: name_00000_of_00004.arrow, ...
    from_cache = cache_files is not None and all(
        Path(f).exists() or any(Path(f).parent.glob(f"{Path(f).stem}_*_of_*.arrow")) for f in cache_files.values()
    )

    start = time.perf_counter()
    tokenized = datasets.DatasetDict(
        {
            split: ds.map(
                encode,
                batched=True,
                with_indices=True,
                num_proc=num_proc,
                remove_columns=ds.column_names,
                desc="Tokenizing",
                cache_file_name=cache_files[split] if cache_files else None,
                new_fingerprint=Hasher.hash((ds._fingerprint, key, "hfclf.tokenize_datasets")),
            )
            for split, ds in raw.items()
        }
    )
    seconds = time.perf_counter() - start
    return tokenized, _tokenization_stats(raw, tokenized, seconds, max_length, from_cache, long_text)


def _tokenization_stats(raw, tokenized, seconds: float, max_length: int, from_cache: bool, long_text) -> dict:
    """The throughput of a tokenization (see `tokenize_datasets`), also logged."""
    num_examples = sum(len(ds) for ds in raw.values())
    num_tokens = sum(int(column_array(ds, "length").sum()) for ds in tokenized.values())
    stats = {
        "max_length": max_length,
        "tokenize_seconds": seconds,
        "tokenize_examples_per_second": num_examples / max(seconds, 1e-9),
        "tokenize_tokens_per_second": num_tokens / max(seconds, 1e-9),
        "tokenize_from_cache": from_cache,
    }
    windows = sum(len(ds) for ds in tokenized.values())
    logger.info(
        "Tokenized %s examples (%s tokens%s) in %.1fs: %.0f examples/s%s",
        f"{num_examples:,}",
        f"{num_tokens:,}",
        f", {windows:,} windows" if long_text.strategy == "windows" else "",
        seconds,
        stats["tokenize_examples_per_second"],
        " (loaded from the cache)" if from_cache else "",
    )
    return stats


def encode_texts(tokenizer, texts: list[str], pairs: list[str] | None, max_length: int, long_text: LongText):
    """`(encoding, origin)`: token ids of each text (with its pair: separator tokens, segment ids, the longer one cut
    first), at most `max_length` each, no padding, plus `length`. Longer texts follow `long_text`; with windows a
    text gives several rows, and `origin` is the text each row comes from (None otherwise)."""
    if pairs is not None and long_text.strategy != "truncate":  # windows and head-and-tail cut one text
        raise HfclfInputError(
            f"Long-text strategy {long_text.strategy} cuts one text, not sentence pairs; pairs are truncated (the "
            "longer text first). A model trained with both read only the first texts: train it again without it."
        )
    if long_text.strategy == "windows":
        encoded = tokenizer(
            texts,
            truncation=True,
            max_length=max_length,
            stride=long_text.stride,
            return_overflowing_tokens=True,
            return_length=True,
        )
        origin = encoded.pop("overflow_to_sample_mapping")
        return dict(encoded), list(origin)
    if long_text.strategy == "head_tail":
        return _head_tail(tokenizer, texts, max_length, long_text.head_tokens), None
    return dict(tokenizer(texts, pairs, truncation=True, max_length=max_length, return_length=True)), None


def _encoder(tokenizer, max_length: int, long_text: LongText, label_feature):
    """The batched function that tokenizes a batch of examples and encodes their labels."""
    num_labels = len(label_feature.feature.names) if isinstance(label_feature, datasets.Sequence) else None

    def encode(batch, indices):
        labels = batch["label"]
        if num_labels is not None:  # multi-label: the ids of an example's classes -> a multi-hot float vector
            labels = multi_hot_rows(labels, num_labels).astype(np.float32)
        encoded, origin = encode_texts(tokenizer, batch["text"], batch.get("text_pair"), max_length, long_text)
        if origin is None:
            return {**encoded, "label": labels}
        return {**encoded, "label": [labels[i] for i in origin], "doc_id": [indices[i] for i in origin]}

    return encode


def _special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a single text ([CLS] and [SEP] for BERT)."""
    content = tokenizer("a", add_special_tokens=False)["input_ids"]
    wrapped = tokenizer("a")["input_ids"]
    start = next(i for i in range(len(wrapped)) if wrapped[i : i + len(content)] == content)
    return wrapped[:start], wrapped[start + len(content) :]


def _head_tail(tokenizer, texts: list[str], max_length: int, head: int) -> dict:
    """The first `head` and the last tokens of each text within `max_length` with special tokens (Sun et al. 2019,
    "How to fine-tune BERT for text classification?": 128 head and 382 tail tokens were best on IMDB)."""
    prefix, suffix = _special_tokens(tokenizer)
    budget = max_length - len(prefix) - len(suffix)
    ids = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    kept = [x if len(x) <= budget else x[:head] + x[len(x) - (budget - head) :] for x in ids]
    input_ids = [prefix + x + suffix for x in kept]
    encoded = {"input_ids": input_ids, "attention_mask": [[1] * len(x) for x in input_ids]}
    if "token_type_ids" in tokenizer.model_input_names:
        encoded["token_type_ids"] = [[0] * len(x) for x in input_ids]
    encoded["length"] = [len(x) for x in input_ids]
    return encoded


def _capped_length(tokenizer, max_length: int) -> int:
    """`max_length`, at most the tokenizer's own limit (a warning says so when it is lowered)."""
    if max_length < 1:
        raise HfclfInputError(
            f"max_length must be a positive number of tokens, got {max_length}. Pass e.g. --max-length 128."
        )
    model_max_length = getattr(tokenizer, "model_max_length", None)
    # Tokenizers without a limit report a huge sentinel value (~1e30), hence the sanity bound.
    if model_max_length is not None and model_max_length < 1_000_000 and max_length > model_max_length:
        logger.warning(
            "max_length=%d is above the tokenizer limit %d; using %d.", max_length, model_max_length, model_max_length
        )
        return model_max_length
    return max_length


def _cache_files(raw, key: str, cache_dir: Optional[str]) -> dict[str, str] | None:
    """Arrow cache file of each split, keyed by the split's content fingerprint and `key` (the tokenizer and the
    settings it runs with)."""
    if cache_dir is None:
        return None
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    return {split: str(Path(cache_dir) / f"{ds._fingerprint}-{key}.arrow") for split, ds in raw.items()}


def train_wordpiece_tokenizer(
    texts: Union[Iterable[str], datasets.Dataset],
    vocab_size: int = 30522,
    lowercase: bool = True,
    model_max_length: int = 512,
    batch_size: int = 1000,
):
    """
    Train a BERT-style WordPiece tokenizer on `texts` (strings, or a `Dataset` with a `text` column).

    Returns a `transformers.PreTrainedTokenizerFast` with `[PAD] [UNK] [CLS] [SEP] [MASK]` set, which
    round-trips through `save_pretrained` / `AutoTokenizer.from_pretrained`. The same texts give the same
    vocabulary every time (see [`wordpiece_vocabulary`]).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if vocab_size < len(WORDPIECE_SPECIAL_TOKENS) + 1:
        raise HfclfInputError(
            f"--tokenizer_vocab_size {vocab_size} is too small for a vocabulary; pass e.g. 30522 (the default)."
        )
    start = time.perf_counter()
    normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=lowercase), pre_tokenizers.BertPreTokenizer()
    words = Counter()
    for batch in _text_batches(texts, batch_size):
        for text in batch:
            words.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    vocab = wordpiece_vocabulary(words, vocab_size, WORDPIECE_SPECIAL_TOKENS)
    logger.info("Trained a WordPiece vocabulary of %d tokens on %d distinct words in %.1f s", len(vocab), len(words),
                time.perf_counter() - start)  # fmt: skip

    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer, tokenizer.pre_tokenizer = normalizer, pre_tokenizer
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
    )


def wordpiece_vocabulary(word_counts: Counter, vocab_size: int, special_tokens=WORDPIECE_SPECIAL_TOKENS) -> dict:
    """A WordPiece vocabulary learnt as `tokenizers`' WordPieceTrainer learns it: the special tokens, every character
    (`##c` inside a word), then merges of the most frequent pair of adjacent pieces until `vocab_size`. Ties go to
    the pair that sorts first, so the same counts give the same vocabulary. (The trainer of `tokenizers` breaks ties
    by hash-map order, which changes from run to run: huggingface/tokenizers#1794.)"""
    vocab = {token: i for i, token in enumerate(special_tokens)}
    words = [[word[0], *("##" + char for char in word[1:])] for word in word_counts]
    counts = list(word_counts.values())
    for token in sorted({piece for word in words for piece in word}, key=lambda piece: (piece[:2] == "##", piece)):
        vocab.setdefault(token, len(vocab))
    pair_counts, pair_words = defaultdict(int), defaultdict(set)  # pair_words: a superset once words merge
    for i, (word, count) in enumerate(zip(words, counts)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += count
            pair_words[pair].add(i)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)
    while len(vocab) < vocab_size and heap:
        negative, pair = heapq.heappop(heap)
        count = pair_counts.get(pair, 0)
        if count != -negative:  # counted again since it was pushed: back in with its count
            if count > 0:
                heapq.heappush(heap, (-count, pair))
            continue
        first, second = pair
        token = first + second[2:]
        vocab.setdefault(token, len(vocab))
        grown = set()
        for i in pair_words.pop(pair):
            word = words[i]
            merged, j, end = [], 0, len(word) - 1
            while j <= end:
                if j < end and word[j] == first and word[j + 1] == second:
                    merged.append(token)
                    j += 2
                else:
                    merged.append(word[j])
                    j += 1
            if len(merged) == len(word):
                continue
            count = counts[i]
            for old in zip(word, word[1:]):
                pair_counts[old] -= count
            for new in zip(merged, merged[1:]):
                pair_counts[new] += count
                if token in new:
                    pair_words[new].add(i)
                    grown.add(new)
            words[i] = merged
        del pair_counts[pair]
        for new in grown:
            heapq.heappush(heap, (-pair_counts[new], new))
    return vocab


def _text_batches(texts: Union[Iterable[str], datasets.Dataset], batch_size: int) -> Iterator[list[str]]:
    if isinstance(texts, datasets.Dataset):
        for batch in texts.select_columns(["text"]).iter(batch_size=batch_size):
            yield batch["text"]
        return
    iterator = iter(texts)
    while batch := list(islice(iterator, batch_size)):
        yield batch
