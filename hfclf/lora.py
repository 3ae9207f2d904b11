"""LoRA fine-tuning with peft: arguments, target modules per encoder family, wrapping, reloading and merging.

A LoRA run folder holds the adapter in peft's format (`adapter_config.json`, `adapter_model.safetensors`; the
adapter includes the trained pooling head and classifier, `modules_to_save`), the tokenizer, and `hfclf_lora.json`:
how to rebuild the base classifier (encoder + head config) that the adapter goes on. Reloading is one line:

```python
from hfclf.lora import load_lora_model
model = load_lora_model("runs/my-lora-run")  # PeftModel; or PeftModel.from_pretrained(load_base_model(dir), dir)
```

`--merge_lora` (training) and `hfclf export RUN OUT --merge` write a plain merged model that loads without peft.
"""

import logging
from pathlib import Path

from .architectures import ARCHITECTURES, BuildInputs, get_architecture, label_fields, resolve_model_name
from .errors import HfclfInputError
from .files import write_json
from .run_folder import read_json

logger = logging.getLogger("hfclf")

LORA_INFO_FILE = "hfclf_lora.json"
ADAPTER_CONFIG_FILE = "adapter_config.json"
MERGED_SUBDIR = "merged"

# Attention projections that LoRA adapts by default, per encoder `model_type` (query and value, as in the paper).
DEFAULT_TARGET_MODULES = {
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "xlm-roberta": ["query", "value"],
    "camembert": ["query", "value"],
    "electra": ["query", "value"],
    "albert": ["query", "value"],
    "ernie": ["query", "value"],
    "distilbert": ["q_lin", "v_lin"],
    "mpnet": ["q", "v"],
    "deberta": ["in_proj"],
    "deberta-v2": ["query_proj", "value_proj"],
    "modernbert": ["Wqkv"],
}


def encoder_config_of(model):
    """The config of the pretrained encoder inside an hfclf pooled classifier or a stock HF classifier."""
    config = model.config
    return getattr(config, "encoder_config", None) or config


def default_target_modules(encoder_config) -> list[str]:
    """LoRA target modules for an encoder family (its `model_type`), from hfclf's table or peft's own."""
    model_type = encoder_config.model_type
    if model_type in DEFAULT_TARGET_MODULES:
        return list(DEFAULT_TARGET_MODULES[model_type])
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    if model_type in TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING:
        return list(TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING[model_type])
    raise HfclfInputError(
        f"No default LoRA target modules for encoder type '{model_type}'. Pass --lora-target-modules with the "
        "names of its attention projections (e.g. query,value)."
    )


def head_module_names(model) -> list[str]:
    """The trainable head that LoRA leaves fully trained and saved: the classifier and the layers between it and the
    encoder (hfclf's attention pooling, DistilBERT's pre_classifier, DeBERTa's pooler, which v3 checkpoints lack)."""
    names = ["classifier"]
    base = getattr(model, "model", None)
    if getattr(base, "attention_pooling", None) is not None:
        names.append("attention_pooling")
    # Head layers of stock classifiers sit beside the encoder, not inside it (BERT's own pooler is pretrained).
    names += [name for name in ("pre_classifier", "pooler") if getattr(model, name, None) is not None]
    return names


def apply_lora(model, lora_args, arch: str):
    """Wrap `model` in a `PeftModel` with LoRA on the encoder's attention; prints the trainable share.

    `lora_args` has `lora_r`, `lora_alpha`, `lora_dropout` and `lora_target_modules` (the LoRA fields of
    [`hfclf.training_args.ModelArguments`]).
    """
    from peft import LoraConfig, get_peft_model

    if not get_architecture(arch).lora:
        lora_archs = " or ".join(name for name, entry in ARCHITECTURES.items() if entry.lora)
        raise HfclfInputError(f"--lora applies to pretrained encoders (--arch {lora_archs}), not --arch {arch}.")
    if lora_args.lora_target_modules:
        targets = [name.strip() for name in lora_args.lora_target_modules.split(",") if name.strip()]
    else:
        targets = default_target_modules(encoder_config_of(model))
    module_names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [name for name in targets if name not in module_names]
    if missing:
        raise HfclfInputError(
            f"--lora-target-modules {','.join(missing)} not found in the model. Pass names of its linear layers, "
            "e.g. query,value for BERT."
        )
    config = LoraConfig(
        r=lora_args.lora_r,
        lora_alpha=lora_args.lora_alpha,
        lora_dropout=lora_args.lora_dropout,
        target_modules=targets,
        modules_to_save=head_module_names(model),
        bias="none",
    )
    peft_model = get_peft_model(model, config)
    trainable, total = peft_model.get_nb_trainable_parameters()
    message = (
        f"LoRA (r={lora_args.lora_r}, alpha={lora_args.lora_alpha}, targets {','.join(targets)}): "
        f"{trainable:,} trainable parameters of {total:,} ({100 * trainable / total:.2f}%)"
    )
    logger.info(message)
    print(message, flush=True)
    return peft_model


def base_model_spec(model_args, model) -> dict:
    """What `load_base_model` needs to rebuild the base classifier that the adapter goes on."""
    config = model.config
    encoder = model_args.model
    spec = {
        "arch": model_args.arch,
        # Aliases (minilm) and Hub ids are kept as given, so the run loads on other machines; a local folder is
        # recorded as an absolute path, so the run loads from any working directory.
        "encoder": str(Path(encoder).resolve()) if Path(encoder).is_dir() else encoder,
        "num_labels": config.num_labels,
        "id2label": {str(i): name for i, name in config.id2label.items()},
    }
    architecture = get_architecture(model_args.arch)
    if architecture.config_class is not None:  # the head's configuration, as the trained model has it
        fields = architecture.config_fields() | {"pooling", "class_weights", "pad_token_id"}
        spec["head"] = {key: getattr(config, key) for key in sorted(fields)}
    elif model_args.config_fields():
        spec["head"] = model_args.config_fields()
    return spec


def save_lora_run(output_dir, spec: dict) -> None:
    """Write `hfclf_lora.json` next to the adapter that `Trainer.save_model` wrote."""
    write_json(Path(output_dir) / LORA_INFO_FILE, spec)


def is_lora_dir(path) -> bool:
    return (Path(path) / ADAPTER_CONFIG_FILE).is_file()


def read_lora_spec(path) -> dict:
    spec = read_json(Path(path) / LORA_INFO_FILE)
    if spec is None:
        raise HfclfInputError(
            f"{path} holds a peft adapter but no {LORA_INFO_FILE}; load it with PeftModel.from_pretrained(base, "
            f"'{path}') on its base model, or point at an hfclf LoRA run folder."
        )
    return spec


def base_build_inputs(path) -> BuildInputs:
    """How to rebuild the base classifier of an hfclf LoRA run, from its `hfclf_lora.json`."""
    spec = read_lora_spec(path)
    names = [spec["id2label"][str(i)] for i in range(spec["num_labels"])]
    head = dict(spec.get("head") or {})
    return BuildInputs(
        model=resolve_model_name(spec["encoder"]),
        labels=label_fields(names),
        pooling=head.pop("pooling", None),
        class_weights=head.pop("class_weights", None),
        pad_token_id=head.pop("pad_token_id", None),
        overrides=head,
    )


def load_base_model(path):
    """The base classifier of an hfclf LoRA run: the pretrained encoder plus a head of the run's configuration.

    The head's weights here are fresh; the adapter (`PeftModel.from_pretrained`) replaces them with the trained ones.
    """
    import torch

    torch.manual_seed(0)  # the fresh head is replaced by the adapter's; seeding only keeps loads identical
    return get_architecture(read_lora_spec(path)["arch"]).build(base_build_inputs(path))


def base_config(path):
    """The config of the base classifier of an hfclf LoRA run (no weights are loaded)."""
    return get_architecture(read_lora_spec(path)["arch"]).make_config(base_build_inputs(path))


def load_lora_model(path, is_trainable: bool = False):
    """The `PeftModel` of an hfclf LoRA run folder (base classifier + adapter)."""
    from peft import PeftModel

    return PeftModel.from_pretrained(load_base_model(path), str(path), is_trainable=is_trainable)


def merge_lora_run(path, output_dir) -> Path:
    """Merge the adapter of a LoRA run into its base and save a plain model (+ tokenizer) that loads without peft
    into `output_dir` (callers that replace a folder write into a temporary one, see `hfclf.files.atomic_folder`)."""
    from transformers import AutoTokenizer

    merged = load_lora_model(path).merge_and_unload()
    output_dir = Path(output_dir)
    merged.save_pretrained(output_dir)
    AutoTokenizer.from_pretrained(path).save_pretrained(output_dir)
    logger.info("Wrote the merged model to %s", output_dir)
    return output_dir
