"""The `hfclf` command: train, compare, predict, eval, embed, export and push.

Importing this module is light (argparse only): torch and transformers load inside the commands, so
`hfclf --help` answers at once.
"""

import argparse
import logging
import sys

from ..errors import HfclfInputError, run_command
from ..inference.onnx_backend import BACKENDS

DESCRIPTION = """Fine-tune, compare, use and share text classifiers on the Hugging Face stack.

Run `hfclf <command> --help` for the flags and examples of each command."""

EXAMPLES = """examples:
  hfclf train --dataset sst2 --pooling attention --max_train_samples 2000 --output_dir runs/sst2
  hfclf train --dataset sst2 --lora --lora_r 8 --merge_lora --output_dir runs/sst2-lora
  hfclf compare --help
  hfclf search recipes/configs/sst2_search.yaml
  hfclf predict --model runs/sst2 --input reviews.csv --output predictions.csv --top-k 2
  hfclf eval --model runs/sst2 --dataset sst2 --split validation
  hfclf embed --model runs/sst2 --input docs.jsonl --output vectors.parquet --split-sentences
  hfclf export runs/sst2 exported/sst2
  hfclf push runs/sst2 my-user/sst2-minilm-attention --private
"""

COMMANDS = {
    "train": "fine-tune a classifier (the finetune recipe; every model, data and TrainingArguments flag)",
    "compare": "train and compare several configurations on the same data",
    "search": "search hyperparameters with Optuna (trials are training runs; workers can share one study)",
    "predict": "label texts from a file or stdin, with class probabilities",
    "eval": "metrics of a trained model on a dataset or test file (same metrics as training)",
    "embed": "pooled sentence embeddings from a model's own pooling head (.npy or .parquet)",
    "export": "write the shareable folder of a run: weights, code, tokenizer, model card",
    "push": "export a run and upload it to the Hugging Face Hub",
}

PREDICT_EPILOG = """The input is a csv/tsv/json/jsonl/parquet file (the text columns the model was trained on with
--text_columns, joined as in training; else the text column is guessed like `hfclf train` does: text, sentence,
review, content or document; or pass --text-column, e.g. title,description), a .txt file with one text per line, or
- for stdin. Empty texts are an error naming their line numbers. Texts are batched in order of token length (little
padding) and written back in input order. The output (.csv, .tsv or .jsonl; JSON lines on stdout by default) has the
columns text, label, score (probability of that label) and prob_<label> for every class; --top-k K adds
top1_label, top1_score ... topK_score. --model also takes a LoRA run folder (the adapter is merged on load).

examples:
  hfclf predict --model runs/sst2 --input reviews.csv --output predictions.csv
  hfclf predict --model runs/ag_news --input headlines.txt --output top2.jsonl --top-k 2
  echo "a gripping, beautifully acted film" | hfclf predict --model runs/sst2 --input -
"""

EVAL_EPILOG = """The data is read as in `hfclf train` (--dataset from --data-dir or $HFCLF_DATA_DIR, or your own file
with guessed or given columns). Its label names are matched to the model's labels by name (numeric labels are taken
as the model's class ids); labels the model does not know are an error. Prints the loss and the metrics of the
model's task shape, as training computed them and keyed like results.json (single-label: accuracy, macro
precision/recall/F1, weighted F1, MCC; multi-label: F1s, subset accuracy, Hamming loss, ROC-AUC, and each label's
scores; regression: Pearson, Spearman, MAE, RMSE, MSE, R²), and writes them to --output as JSON.

examples:
  hfclf eval --model runs/sst2 --dataset sst2                      # the sst2 test split
  hfclf eval --model runs/sst2 --dataset sst2 --split validation --output dev.json
  hfclf eval --model runs/mine --test-file held_out.csv --text-columns title,body --label-column tag
"""

EMBED_EPILOG = """Vectors come from the model's own pooling head: for hfclf models the pooled sentence vector the
classifier sees (cls, mean, max, attention or cls_mean pooling); any other model (a plain BERT folder, a stock
BertForSequenceClassification) is mean-pooled over its real tokens, and a log line says so.

--split-sentences embeds every sentence of each document on its own: documents are split after . ! ? (and closing
quotes) before whitespace, and at line breaks (a simple rule; 'e.g. x' splits too). Each vector is one sentence,
encoded without its neighbours, so it matches embedding that sentence alone. Sentences are packed into batches of
similar token length, each truncated to --max-length tokens (a warning counts those). The output records which
document (doc_id, the input row) and sentence (sentence_id, its position in the document) each vector belongs to.

Output: .npy is a float32 matrix, one row per text (with --split-sentences, FILE.index.csv next to it has
doc_id, sentence_id, text per row); .parquet has columns doc_id, [sentence_id,] text, embedding.

examples:
  hfclf embed --model runs/sst2 --input reviews.csv --output reviews.npy
  hfclf embed --model runs/imdb --input reviews.jsonl --output sentences.parquet --split-sentences --normalize
"""

EXPORT_EPILOG = """The folder holds model.safetensors, config.json (with auto_map), the model's code files (so
`trust_remote_code=True` works without hfclf), the tokenizer and README.md, a model card built from results.json:
Hub metadata (library_name, pipeline_tag, datasets, metrics, model-index), results table, architecture and pooling,
labels, training arguments and usage. Checkpoints, optimizer states, training_args.bin and predictions stay behind.
For a LoRA run it holds the adapter (peft format) and hfclf_lora.json, or with --merge a plain merged model that
loads without peft. A model of --arch pooled is also a sentence-transformers model (modules.json and its settings):
SentenceTransformer(DIR, trust_remote_code=True).encode(texts) gives the vectors of `hfclf embed`. `hfclf push`
uploads exactly this folder.

examples:
  hfclf export runs/sst2 exported/sst2
  hfclf export runs/sst2-lora exported/sst2-merged --merge
"""

PUSH_EPILOG = """Exports the run (see `hfclf export --help`) into a temporary folder, creates the Hub repo if needed
and uploads that folder in one commit. The token comes from the usual Hugging Face sources: the HF_TOKEN environment
variable or `hf auth login`; it is never printed or written to a file.

examples:
  hfclf push runs/sst2 my-user/sst2-minilm-attention
  hfclf push runs/sst2-lora my-org/sst2-minilm-lora --private --revision experiment-1
  hfclf push runs/sst2-lora my-user/sst2-minilm-merged --merge
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


class _Parser(argparse.ArgumentParser):
    """Usage errors are one `error:` line (exit code 2), like every other bad input."""

    def error(self, message):
        raise HfclfInputError(f"{message}; see `{self.prog} --help`.")


def _whole_number(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number of at least {minimum}, got '{text}'")
        return value

    return parse


def _flag(parser, name: str, **kwargs):
    """Add a flag that also answers to its underscore spelling (--text-column and --text_column)."""
    names = [name] + (["--" + name[2:].replace("-", "_")] if "-" in name[2:] else [])
    return parser.add_argument(*names, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hfclf", description=DESCRIPTION, epilog=EXAMPLES, formatter_class=_Formatter, allow_abbrev=False
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>", title="commands")
    for name in ("train", "compare", "search"):
        sub.add_parser(name, help=COMMANDS[name], add_help=False, allow_abbrev=False)
    for name, (epilog, add_flags, _) in SUBCOMMANDS.items():
        command = sub.add_parser(
            name,
            help=COMMANDS[name],
            description=COMMANDS[name].capitalize() + ".",
            epilog=epilog,
            formatter_class=_Formatter,
            allow_abbrev=False,
        )
        add_flags(command)
    return parser


def _model_flags(p, output_help: str) -> None:
    """The flags of every command that runs a trained model."""
    _flag(p, "--model", required=True, help="Model folder: the output of `hfclf train` or `hfclf export`.")
    _flag(p, "--batch-size", type=_whole_number(1), default=64, help="Texts per batch (default 64).")
    _flag(
        p,
        "--max-length",
        type=_whole_number(1),
        default=None,
        help="Tokens per text (default: the length the model was trained with, at most 512).",
    )
    _flag(p, "--device", default="auto", help="auto (GPU if available), cpu, cuda or cuda:N.")
    _flag(
        p,
        "--backend",
        default="torch",
        choices=BACKENDS,
        help="torch (default), or the ONNX graph of a folder written by `hfclf export --onnx` (onnx-int8: its "
        "int8-quantized weights, `--int8`) run by ONNX Runtime.",
    )
    _flag(
        p,
        "--bf16",
        action="store_true",
        help="Compute in bf16 autocast (--backend torch): about 1.8x faster on CPUs with AVX512-BF16 or AMX (other "
        "CPUs emulate bf16, several times slower), probabilities within about 1e-2 of fp32 (default: fp32).",
    )
    _flag(p, "--output", default=None, help=output_help)
    _flag(p, "--overwrite", action="store_true", help="Replace an existing --output file (default: refuse it).")


def _text_input_flags(p) -> None:
    _flag(p, "--input", required=True, help="csv/tsv/json/jsonl/parquet file, .txt (one text per line), or - (stdin).")
    _flag(
        p,
        "--text-column",
        default=None,
        help="Text column of a table, or comma-separated columns joined as in training (default: the columns the "
        "model was trained on, else guessed).",
    )


def _pair_flag(p, where: str) -> None:
    _flag(
        p,
        "--text-pair-column",
        default=None,
        help=f"Second text of each sentence pair in {where} (default: the column the model was trained on).",
    )


def _predict_flags(p) -> None:
    _model_flags(p, "Output file: .csv, .tsv or .jsonl (default: JSON lines on stdout).")
    _text_input_flags(p)
    _pair_flag(p, "--input")
    _flag(
        p,
        "--top-k",
        type=_whole_number(0),
        default=0,
        help="Also write the K most likely labels and their scores (default 0: none).",
    )


def _eval_flags(p) -> None:
    _model_flags(p, "Write the metrics to this .json file.")
    _flag(p, "--dataset", default=None, help="A named dataset, as `hfclf train --dataset` takes (see its --help).")
    _flag(p, "--data-dir", default=None, help="Folder of the named datasets (default: $HFCLF_DATA_DIR, else the Hub).")
    _flag(p, "--test-file", default=None, help="Your labelled csv/tsv/json/jsonl/parquet file (optionally .gz).")
    _flag(
        p,
        "--text-columns",
        default=None,
        help="Text column(s) of --test-file, comma-separated (default: the columns the model was trained on, else "
        "guessed).",
    )
    _pair_flag(p, "--test-file")
    _flag(p, "--label-column", default=None, help="Label column of --test-file (default: guessed).")
    _flag(
        p,
        "--label-columns",
        default=None,
        help="Multi-label --test-file: one 0/1 column per label, comma-separated (instead of --label-column).",
    )
    _flag(p, "--split", default="test", choices=["test", "validation"], help="Split of --dataset (default test).")


def _embed_flags(p) -> None:
    _model_flags(p, "Output file: .npy (float32 matrix) or .parquet (doc_id, sentence_id, text, embedding).")
    _text_input_flags(p)
    _flag(p, "--split-sentences", action="store_true", help="One vector per sentence of each document.")
    _flag(p, "--normalize", action="store_true", help="Scale every vector to unit length.")


def _export_flags(p) -> None:
    p.add_argument("run_dir", help="Output folder of `hfclf train`.")
    p.add_argument("output_dir", help="Folder to write (must be empty or new).")
    _flag(p, "--merge", action="store_true", help="LoRA run: merge the adapter and write a plain model.")
    _flag(p, "--overwrite", action="store_true", help="Replace a non-empty output_dir (once the new one is complete).")
    _flag(p, "--repo-id", default=None, help="Hub repo id to name in the model card's usage (user/name).")
    _flag(p, "--onnx", action="store_true", help="Also write onnx/classifier.onnx for --backend onnx (hfclf[onnx]).")
    _flag(p, "--int8", action="store_true", help="Also write onnx/classifier_int8.onnx, int8 weights (implies --onnx).")


def _push_flags(p) -> None:
    p.add_argument("run_dir", help="Output folder of `hfclf train`.")
    p.add_argument("repo_id", help="Hub repo, user/name or org/name (created if missing).")
    _flag(p, "--private", action="store_true", help="Create the repo private (an existing repo keeps its setting).")
    _flag(p, "--revision", default=None, help="Branch to push to (created if missing; default main).")
    _flag(p, "--merge", action="store_true", help="LoRA run: push a plain merged model instead of the adapter.")
    _flag(p, "--commit-message", default="Upload hfclf model", help="Commit message.")


# ------------------------------------------------------------------------------------------------------ commands


def _predict(args) -> None:
    from ..inference.predict import predict

    predict(
        args.model,
        args.input,
        args.output,
        text_column=args.text_column,
        top_k=args.top_k,
        batch_size=args.batch_size,
        max_length=args.max_length,
        device=args.device,
        text_pair_column=args.text_pair_column,
        backend=args.backend,
        bf16=args.bf16,
        overwrite=args.overwrite,
    )


def _eval(args) -> None:
    from ..files import write_json
    from ..inference.predict import check_output_file, evaluate_model, format_metrics

    data_args = eval_data_arguments(args)
    if args.output and not args.output.lower().endswith(".json"):
        raise HfclfInputError(f"Unsupported --output '{args.output}'; eval writes its metrics to a .json file.")
    check_output_file(args.output, eval_input_files(data_args), args.model, args.overwrite)
    metrics = evaluate_model(
        args.model, data_args, args.split, args.batch_size, args.device, args.max_length, args.backend, args.bf16
    )
    print(format_metrics(metrics), flush=True)
    if args.output:
        write_json(args.output, metrics)


def _embed(args) -> None:
    from ..inference.predict import embed

    if not args.output:
        raise HfclfInputError("hfclf embed needs --output FILE.npy or FILE.parquet.")
    embed(
        args.model,
        args.input,
        args.output,
        text_column=args.text_column,
        split=args.split_sentences,
        batch_size=args.batch_size,
        max_length=args.max_length,
        normalize=args.normalize,
        device=args.device,
        backend=args.backend,
        bf16=args.bf16,
        overwrite=args.overwrite,
    )


def _export(args) -> None:
    from ..inference.hub import export

    folder = export(
        args.run_dir,
        args.output_dir,
        merge=args.merge,
        overwrite=args.overwrite,
        repo_id=args.repo_id,
        onnx=args.onnx or args.int8,
        int8=args.int8,
    )
    print(f"Exported {args.run_dir} to {folder}", flush=True)


def _push(args) -> None:
    from ..inference.hub import push

    push(
        args.run_dir,
        args.repo_id,
        private=args.private or None,
        revision=args.revision,
        merge=args.merge,
        commit_message=args.commit_message,
    )


def eval_data_arguments(args):
    """The `DataArguments` of `hfclf eval`, parsed as `hfclf train` parses them; flags its data source does not use
    are refused."""
    from ..data.loading import DataArguments
    from ..training_args import parse_values

    if not (args.dataset or args.test_file):
        raise HfclfInputError("hfclf eval needs data: pass --dataset NAME or --test-file FILE.")
    if args.test_file and args.split != "test":
        raise HfclfInputError("--test-file is the test split; drop --split validation.")
    if args.data_dir and not args.dataset:
        raise HfclfInputError("--data-dir is where named datasets are found; it needs --dataset (or drop it).")
    names = ("dataset", "data_dir", "test_file", "text_columns", "text_pair_column", "label_column", "label_columns")
    column_flags = [f"--{name.replace('_', '-')}" for name in names[3:] if getattr(args, name) is not None]
    if args.dataset and not args.test_file and column_flags:
        raise HfclfInputError(
            f"{', '.join(column_flags)} apply to --test-file; --dataset {args.dataset} has its own columns. Drop them."
        )
    values = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    (data_args,) = parse_values(values, types=(DataArguments,))
    return data_args


def eval_input_files(data_args) -> list:
    """The files `hfclf eval` reads data from (which its --output must not replace)."""
    import os
    from pathlib import Path

    from ..data.loading import DATA_DIR_ENV

    files = [data_args.test_file]
    data_dir = data_args.data_dir or os.environ.get(DATA_DIR_ENV)
    if data_args.dataset and data_dir and (Path(data_dir) / data_args.dataset).is_dir():
        files += list((Path(data_dir) / data_args.dataset).iterdir())
    return files


# The commands that run here: (examples, their flags, what they do).
SUBCOMMANDS = {
    "predict": (PREDICT_EPILOG, _predict_flags, _predict),
    "eval": (EVAL_EPILOG, _eval_flags, _eval),
    "embed": (EMBED_EPILOG, _embed_flags, _embed),
    "export": (EXPORT_EPILOG, _export_flags, _export),
    "push": (PUSH_EPILOG, _push_flags, _push),
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `hfclf` console script; bad input prints one `error:` line and returns 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        from .finetune import main as train_main

        return train_main(argv[1:], prog="hfclf train")
    if argv and argv[0] == "compare":
        from .compare import main as compare_main

        return compare_main(argv[1:])
    if argv and argv[0] == "search":
        from .search import main as search_main

        return search_main(argv[1:])
    parser = build_parser()
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help
        return int(exit.code or 0)
    except HfclfInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code

    def body():
        if getattr(args, "bf16", False) and args.backend != "torch":
            raise HfclfInputError(
                f"--bf16 applies to --backend torch, not {args.backend} (its graph has its own types)."
            )
        if getattr(args, "bf16", False):
            from ..inference.predict import resolve_device
            from ..training_args import warn_if_bf16_is_emulated

            if resolve_device(args.device).type == "cpu":
                warn_if_bf16_is_emulated("drop --bf16")
        SUBCOMMANDS[args.command][2](args)

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
