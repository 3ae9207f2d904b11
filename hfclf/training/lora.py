"""LoRA fine-tuning with peft: arguments, target modules per encoder family, wrapping, reloading and merging.

A LoRA run folder holds the adapter in peft's format (`adapter_config.json`, `adapter_model.safetensors`; the
adapter includes the trained pooling head and classifier, `modules_to_save`), the tokenizer, and `hfclf_lora.json`:
how to rebuild the base classifier (encoder + head config) that the adapter goes on. Reloading is one line:

```python
from hfclf.training.lora import load_lora_model
model = load_lora_model("runs/my-lora-run")  # PeftModel; or PeftModel.from_pretrained(load_base_model(dir), dir)
```

`--merge_lora` (training) and `hfclf export RUN OUT --merge` write a plain merged model that loads without peft.
"""

import logging

from ..architectures import check_lora
from ..errors import HfclfInputError
from ..run_folder import base_model_spec, load_base_model, load_lora_model, merge_lora_run, save_lora_run

logger = logging.getLogger("hfclf")


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

    check_lora(arch)
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


__all__ = ["apply_lora", "base_model_spec", "save_lora_run", "load_base_model", "load_lora_model", "merge_lora_run"]
