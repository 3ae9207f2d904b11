"""Share a trained model: `export` writes the shareable folder, `push` uploads exactly that folder to the Hub.

The exported folder holds the weights (safetensors), config.json (with `auto_map`), the model's own code (so
`trust_remote_code=True` loading works without hfclf), the tokenizer and a generated model card (README.md); no
checkpoints, optimizer states, `training_args.bin` or predictions. For a LoRA run it holds the peft adapter, or with
`merge=True` a plain merged model. A pooled-encoder model is also a sentence-transformers model (see
[`write_sentence_transformers_files`]).

The Hub token comes from the usual Hugging Face sources (`HF_TOKEN`, `hf auth login`, or `--hub_token` in training)
and is handed to `huggingface_hub` only: it is never printed nor written into a file.
"""

import logging
import shutil
import tempfile
from pathlib import Path

import huggingface_hub
from huggingface_hub import HfApi

from ..architectures import model_hub_id
from ..errors import HfclfInputError, first_line
from ..files import atomic_folder, check_writable, read_json, write_json
from ..run_folder import (
    ADAPTER_CONFIG_FILE,
    ADAPTER_FILES,
    CONFIG_FILE,
    LORA_INFO_FILE,
    TOKENIZER_FILES,
    load_run,
    merge_lora_run,
    read_lora_spec,
)
from .model_card import build_model_card
from .onnx_backend import export_onnx
from .sentence_transformers_export import write_sentence_transformers_files

logger = logging.getLogger("hfclf")

CARD_FILE = "README.md"


def local_base_model(run) -> str | None:
    """The base model of an unmerged LoRA run when it is a folder on this machine (no Hub id), else None."""
    if not run.is_lora:
        return None
    encoder = read_lora_spec(run.path)["encoder"]
    return encoder if model_hub_id(encoder) is None else None


def _lora_card_inputs(run) -> dict:
    """The LoRA description of an unmerged LoRA run, for its model card."""
    adapter = read_json(run.path / ADAPTER_CONFIG_FILE) or {}
    return {"encoder": read_lora_spec(run.path)["encoder"], "r": adapter.get("r"), "alpha": adapter.get("lora_alpha")}


def check_export_folder(run_dir: Path, output_dir: Path, overwrite: bool) -> None:
    """An export goes into a new or empty writable folder (or, with `overwrite`, replaces one) that neither is nor
    holds the run folder or the current directory."""
    target, cwd = output_dir.resolve(), Path.cwd().resolve()
    if target in (run_dir.resolve(), cwd) or target in run_dir.resolve().parents or target in cwd.parents:
        raise HfclfInputError(
            f"Export folder {output_dir} is or contains the run folder {run_dir} (or the current directory), which "
            "--overwrite would delete; choose a new folder, e.g. exports/<name>."
        )
    if output_dir.exists() and not output_dir.is_dir():
        raise HfclfInputError(f"Export folder {output_dir} is a file; pass a folder path.")
    if output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise HfclfInputError(
            f"Export folder {output_dir} already exists and is not empty. Pass --overwrite to replace it, or "
            "choose another folder."
        )
    check_writable(output_dir, "Export folder")


def export(
    run_dir,
    output_dir,
    merge: bool = False,
    overwrite: bool = False,
    repo_id: str | None = None,
    onnx: bool = False,
    int8: bool = False,
) -> Path:
    """Write the shareable folder of a run (see the module docstring) into `output_dir`; returns it. With `onnx`,
    also `onnx/classifier.onnx` (and with `int8` its int8-quantized `onnx/classifier_int8.onnx`) for `--backend onnx`.

    The folder is built under a temporary name and renamed into place when complete; with `overwrite`, an existing
    folder is replaced only then.
    """
    run_dir, output_dir = Path(run_dir), Path(output_dir)
    run = load_run(run_dir)  # its files are checked before anything is copied
    check_export_folder(run_dir, output_dir, overwrite)
    if repo_id is not None:
        check_repo_id(repo_id)  # the card names it in its model-index and loading snippet
    if merge and not run.is_lora:
        raise HfclfInputError(f"--merge needs a LoRA run folder, and {run_dir} holds a full model; drop --merge.")
    run.check_classifier()
    tokenizer = run.tokenizer()  # it loads: an export without it would fail in every client
    if not run.is_lora:
        run.classifier()  # its weights fit its config: never export a model that would load with random weights
    if run.results is None:
        logger.warning(
            "%s has no results.json (an exported folder or a checkpoint): the card can name no data or metrics. Export "
            "the run folder to keep them.",
            run_dir,
        )
    with atomic_folder(output_dir, replace=overwrite) as folder:
        config, lora = run.config, None
        if run.is_lora and merge:
            merge_lora_run(run_dir, folder)
            config = load_run(folder).config
        elif run.is_lora:
            if base := local_base_model(run):
                logger.warning(
                    "The adapter goes on the local model %s: the export loads only where that folder is. Pass --merge "
                    "for a folder that stands alone.",
                    base,
                )
            lora = _lora_card_inputs(run)
            _copy_files(run_dir, folder, (*ADAPTER_FILES, LORA_INFO_FILE, *TOKENIZER_FILES))
        else:
            names = [p.name for p in run_dir.iterdir() if p.suffix in (".safetensors", ".py")]
            _copy_files(run_dir, folder, (CONFIG_FILE, *sorted(names), *TOKENIZER_FILES))
        _drop_local_paths(folder / CONFIG_FILE)
        # a pooled model is also a sentence-transformers model
        st_files = write_sentence_transformers_files(folder, config, tokenizer)
        card = build_model_card(config, run.results, repo_id=repo_id, lora=lora, sentence_transformers=st_files)
        if onnx or int8:
            export_onnx(run_dir, folder, int8=int8)
        (folder / CARD_FILE).write_text(card)
    logger.info("Exported %s to %s", run_dir, output_dir)
    return output_dir


def _drop_local_paths(config_file: Path) -> None:
    """Remove transformers' `_name_or_path` (where the model was loaded from: a path on this machine) from an exported
    config, its encoder's included; loading never reads it."""
    config = read_json(config_file)
    if config is None:
        return
    cleaned = {key: value for key, value in config.items() if key != "_name_or_path"}
    for key, value in cleaned.items():
        if isinstance(value, dict) and "_name_or_path" in value:
            cleaned[key] = {inner: item for inner, item in value.items() if inner != "_name_or_path"}
    if cleaned != config:
        write_json(config_file, cleaned)


def _copy_files(source: Path, target: Path, names) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in dict.fromkeys(names):
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)


def push(
    run_dir,
    repo_id: str,
    private: bool | None = None,
    revision: str | None = None,
    token: str | None = None,
    merge: bool = False,
    commit_message: str = "Upload hfclf model",
) -> str:
    """Export `run_dir` into a temporary folder and upload exactly that folder to the Hub repo `repo_id`.

    `token=None` uses the token of the usual Hugging Face sources (HF_TOKEN, `hf auth login`). Returns the URL of
    the commit (or of the repo).
    """
    check_repo_id(repo_id)
    base = None if merge else local_base_model(load_run(run_dir))
    if base:
        raise HfclfInputError(
            f"The adapter in {run_dir} goes on the local model {base}, which Hub users cannot load; pass --merge to "
            "push a model that stands alone, or train the adapter on a Hub model."
        )
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="hfclf-export-") as tmp:
        folder = export(run_dir, Path(tmp) / "model", merge=merge, repo_id=repo_id)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            info = api.upload_folder(
                repo_id=repo_id, folder_path=str(folder), revision=revision, commit_message=commit_message
            )
        # huggingface_hub's HTTP and offline-mode errors are OSErrors, but an unreachable network raises its HTTP
        # client's own connection errors: only these three Hub calls are inside.
        except Exception as err:
            raise HfclfInputError(
                f"Could not push to the Hub repo {repo_id} ({first_line(err)}); check the network (and "
                "HF_HUB_OFFLINE), your token (HF_TOKEN or `hf auth login`) and your rights to the repo."
            ) from None
    url = str(getattr(info, "commit_url", None) or info or f"https://huggingface.co/{repo_id}")
    print(f"Pushed {run_dir} to {repo_id}{f' (branch {revision})' if revision else ''}: {url}", flush=True)
    return url


def check_repo_id(repo_id: str) -> None:
    """A one-line error unless `repo_id` is a valid Hub model id with a namespace (user/name or org/name)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if "/" not in repo_id:
        raise HfclfInputError(f"Hub repo id '{repo_id}' needs a namespace; pass it as user/name or org/name.")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise HfclfInputError(f"Hub repo id '{repo_id}' is not valid: {first_line(err)}") from None


def take_over_trainer_push(training_args) -> dict | None:
    """With `--push_to_hub`, stop `Trainer` from pushing (its own card, every checkpoint) and return the settings
    for [`push`], which uploads the exported folder once, after training. None without `--push_to_hub`.

    Either way `--hub_token` is taken out of the training arguments, which `Trainer` saves with every checkpoint."""
    # The token goes to `huggingface_hub` only: `Trainer` would pickle it into training_args.bin of every save.
    token, training_args.hub_token = training_args.hub_token, None
    if not training_args.push_to_hub:
        return None
    if not training_args.hub_model_id:
        raise HfclfInputError("--push_to_hub needs --hub_model_id user/name (the Hub repo to create or update).")
    check_repo_id(training_args.hub_model_id)  # before training, not after it
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        raise HfclfInputError(
            "--push_to_hub uploads the model after training, and HF_HUB_OFFLINE is set; unset it, or train without "
            "--push_to_hub and run `hfclf push RUN user/name` once online."
        )
    if not (token or huggingface_hub.get_token()):
        raise HfclfInputError(
            "--push_to_hub needs a Hugging Face token that can write: run `hf auth login` or set HF_TOKEN (or pass "
            "--hub_token), or train without --push_to_hub and run `hfclf push` later."
        )
    training_args.push_to_hub = False
    return {
        "repo_id": training_args.hub_model_id,
        "private": training_args.hub_private_repo,
        "revision": training_args.hub_revision,
        "token": token,
    }


__all__ = ["export", "push", "take_over_trainer_push"]
