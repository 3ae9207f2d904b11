"""The run folder of `hfclf train`: its file names, its checkpoints and when one is complete, and where to resume.

Every checkpoint gets `hfclf_checkpoint.json`, written by hfclf itself after everything else in the checkpoint (so it
marks the checkpoint as complete), holding the size of every file, the learning-rate groups the optimizer state was
built with, and the training loss and time so far. Resuming reads only this JSON file: hfclf never unpickles
anything from a folder (`training_args.bin` is `Trainer`'s, and is never read).
"""

import json
import logging
from pathlib import Path

from .errors import HfclfInputError, first_line
from .files import hfclf_files, write_json
from .training_args import LEARNING_RATE_GROUP_FLAGS

logger = logging.getLogger("hfclf")

RESULTS_FILE = "results.json"
PREDICTIONS_FILE = "predictions.csv"
CHECKPOINT_RECORD = "hfclf_checkpoint.json"
CHECKPOINT_PREFIX = "checkpoint-"  # transformers' PREFIX_CHECKPOINT_DIR
RECORD_VERSION = 1


def checkpoint_step(path) -> int:
    """The global step in a checkpoint folder's name (`checkpoint-120` -> 120), or -1."""
    suffix = Path(path).name.removeprefix(CHECKPOINT_PREFIX)
    return int(suffix) if Path(path).name.startswith(CHECKPOINT_PREFIX) and suffix.isdigit() else -1


def write_checkpoint_record(checkpoint, record: dict) -> None:
    """Mark `checkpoint` complete: its files and their sizes, plus `record`, written last and atomically."""
    checkpoint = Path(checkpoint)
    skip = {CHECKPOINT_RECORD, *hfclf_files(checkpoint)}
    files = {p.name: p.stat().st_size for p in sorted(checkpoint.iterdir()) if p.is_file() and p.name not in skip}
    write_json(checkpoint / CHECKPOINT_RECORD, {"version": RECORD_VERSION, **record, "files": files})


def checkpoint_problem(checkpoint) -> str | None:
    """Why `checkpoint` cannot be resumed from (not finished, a file missing or truncated), or None if complete."""
    checkpoint = Path(checkpoint)
    try:
        record = json.loads((checkpoint / CHECKPOINT_RECORD).read_text())
    except FileNotFoundError:
        return f"it has no {CHECKPOINT_RECORD}, so its save did not finish"
    except (OSError, ValueError):
        return f"its {CHECKPOINT_RECORD} is unreadable"
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict):
        return f"its {CHECKPOINT_RECORD} is not an hfclf checkpoint record"
    for name, size in record["files"].items():
        path = checkpoint / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size:,} bytes instead of {size:,} (truncated or changed)"
    return None


def read_checkpoint_record(checkpoint) -> dict:
    """The record of a complete checkpoint."""
    return json.loads((Path(checkpoint) / CHECKPOINT_RECORD).read_text())


def checkpoints(output_dir) -> list[Path]:
    """The checkpoint folders of a run, newest (highest step) first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [p for p in output_dir.iterdir() if p.is_dir() and checkpoint_step(p) >= 0]
    return sorted(found, key=checkpoint_step, reverse=True)


def latest_complete_checkpoint(output_dir, warn: bool = True) -> Path | None:
    """The newest complete checkpoint of a run; newer incomplete ones are skipped with a warning naming them."""
    for checkpoint in checkpoints(output_dir):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return checkpoint
        if warn:
            logger.warning("Skipping checkpoint %s: %s", checkpoint, problem)
    return None


def resolve_resume(output_dir, resume: str | None, training_args) -> str | None:
    """The checkpoint to resume from for `--resume_from_checkpoint` (a folder, or `auto`), checked to be complete
    and made with the same learning-rate groups as this run; None to start fresh."""
    if not resume:
        return None
    if resume == "auto":
        checkpoint = latest_complete_checkpoint(output_dir)
        if checkpoint is None:
            logger.info("No checkpoint to resume from; starting fresh.")
            return None
        logger.info("Resuming from %s", checkpoint)
    else:
        checkpoint = Path(resume)
        if not checkpoint.is_dir():
            raise HfclfInputError(
                f"Checkpoint {checkpoint} does not exist; pass a checkpoint-N folder of the run, or "
                "--resume-from-checkpoint auto for its latest."
            )
        problem = checkpoint_problem(checkpoint)
        if problem is not None:
            raise HfclfInputError(
                f"Checkpoint {checkpoint} cannot be resumed: {problem}. Resume from an earlier checkpoint, or pass "
                "--resume-from-checkpoint auto to take the newest complete one."
            )
    _check_learning_rate_groups(checkpoint, training_args)
    return str(checkpoint)


def learning_rate_groups(training_args) -> dict:
    """The flags that shape the optimizer's parameter groups (recorded with each checkpoint)."""
    return {flag: getattr(training_args, flag, off) for flag, off in LEARNING_RATE_GROUP_FLAGS.items()}


def _check_learning_rate_groups(checkpoint: Path, training_args) -> None:
    """A checkpoint's optimizer state holds its learning-rate groups, so a resumed run needs the flags that made
    them (otherwise loading fails, or the old rates come back in silence)."""
    saved = read_checkpoint_record(checkpoint).get("learning_rate_groups", {})
    for flag, now in learning_rate_groups(training_args).items():
        before = saved.get(flag, now)
        if before != now:
            raise HfclfInputError(
                f"{checkpoint} was trained with --{flag.replace('_', '-')} {before} but this run asks for {now}; "
                "resume with the same value, or start a new --output-dir."
            )


def check_output_dir(training_args) -> None:
    """Refuse to write into a non-empty output directory unless asked to overwrite or resume from a checkpoint."""
    output_dir = Path(training_args.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise HfclfInputError(f"--output-dir {output_dir} is a file; pass a directory path.")
    if not output_dir.is_dir() or not set(p.name for p in output_dir.iterdir()) - hfclf_files(output_dir):
        return
    resume = training_args.resume_from_checkpoint
    if training_args.overwrite_output_dir or (resume and resume != "auto"):
        return
    if resume == "auto" and latest_complete_checkpoint(output_dir, warn=False) is not None:
        return
    state = "has no complete checkpoint to resume from" if resume else "already exists"
    raise HfclfInputError(
        f"Output directory {output_dir} {state} and is not empty. Pass --overwrite-output-dir to replace "
        "its files, --resume-from-checkpoint auto to continue a run that saved checkpoints, or choose another "
        "--output-dir."
    )


# ------------------------------------------------------------------------------------------------ saved model folders

CONFIG_FILE = "config.json"


def read_json(path) -> dict | None:
    """A JSON file's content, or None when it does not exist; a clean error when it is unreadable or truncated."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise HfclfInputError(f"{path} is a folder, where a JSON file was expected; remove or rename it.") from None
    except (OSError, ValueError) as err:
        problem = first_line(err)
        raise HfclfInputError(
            f"{path} is not readable JSON ({problem}): the file is damaged or truncated; restore it, or train or "
            "export the model again."
        ) from None


def check_weight_files(folder) -> None:
    """Every `*.safetensors` file of a model folder has a complete header and all the data it announces."""
    from safetensors import safe_open

    for path in sorted(Path(folder).glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except Exception as err:  # safetensors raises its own error type for damaged files
            problem = first_line(err)
            raise HfclfInputError(
                f"Model file {path} is damaged ({problem}), e.g. truncated by an interrupted copy or save; restore "
                "it, or train or export the model again."
            ) from None


def check_model_folder(path) -> dict:
    """The parsed config.json of a saved model folder whose files are intact; a one-line error otherwise."""
    path = Path(path)
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise HfclfInputError(f"Model folder {path} {what}; pass the output folder of `hfclf train` or `hfclf export`.")
    config = read_json(path / CONFIG_FILE)
    if config is None:
        raise HfclfInputError(
            f"{path} has no {CONFIG_FILE}, so it is not a saved model; pass the output folder of `hfclf train`."
        )
    check_weight_files(path)
    return config


def check_classifier_dir(path) -> dict:
    """The config.json of an intact model folder that has a sequence-classification head; else a one-line error."""
    config = check_model_folder(path)
    architectures = config.get("architectures") or []
    if not any(name.endswith("ForSequenceClassification") for name in architectures):
        found = ", ".join(architectures) or config.get("model_type", "unknown")
        raise HfclfInputError(
            f"{path} holds a model without a classifier head ({found}); pass a folder saved from a sequence "
            "classifier, e.g. the output of `hfclf train`."
        )
    return config
