"""Make an exported pooled model a sentence-transformers model too, giving the vectors of `hfclf embed`.

`SentenceTransformer(folder, trust_remote_code=True)` (sentence-transformers 6.2) reads `modules.json` (its module
pipeline), `config_sentence_transformers.json` (model-level settings), `sentence_bert_config.json` (the `Transformer`
module at the folder root) and, for a `Pooling` module, `1_Pooling/config.json`. Its `Transformer` module loads the
folder's model with `AutoModel` (hfclf's own code, through `auto_map` and `trust_remote_code`) and its tokenizer, and
truncates texts to `max_seq_length`: written here as the length `hfclf embed` uses by default (`default_max_length`),
since sentence-transformers would otherwise take the tokenizer's `model_max_length`, uncapped by the encoder's
positions (which sit in `encoder_config`, where it does not look).

Per pooling of the model (`config.pooling`):

- `cls`, `mean`, `max`, `cls_mean`: the `Transformer` module outputs the encoder's token vectors (`last_hidden_state`)
  and sentence-transformers' own `Pooling` pools them with the same mode(s), so no custom code is needed and the
  usual layout (and `get_embedding_dimension()`, 2 x hidden for cls_mean) holds. Its output equals hfclf's `pool()`:
  mean and max exclude padding by the attention mask (max fills padding with -inf, hfclf with the dtype's minimum:
  equal whenever a text has a token); `cls` reads the first real token, which is hfclf's position 0 with right
  padding (with left padding they differ, so such a model gets no sentence-transformers files); `cls_mean` is
  `["cls", "mean"]`, concatenated in that order like hfclf's `[cls, mean]`.
- `attention`: its scoring MLP has learned weights that `Pooling` lacks. The `Transformer` module is configured
  (`modality_config`) to output the model's own `pooler_output` as the sentence embedding: the very vectors of
  `hfclf embed`, with no custom module file to ship and load as remote code. Unpadding (flash attention) is turned
  off for it, since the pooling head needs the padded batch and its attention mask. (Taking `pooler_output` for every
  pooling would be simpler, but the dimension sentence-transformers reports is the encoder's `hidden_size`, wrong
  for cls_mean, and it gives up unpadded batches.)

Only full `hfclf_pooled_encoder` models get the files: not an unmerged LoRA adapter (no model to load), not the LSTM
or tiny Transformer (their `pooler_output` is wider than the `hidden_size` sentence-transformers would report), and
not a sentence-pair model (`hfclf embed` refuses it: its vectors stand for a pair). sentence-transformers is never
imported here: it stays an optional dependency, needed only by whoever loads the folder with it.
"""

import logging
from pathlib import Path
from types import SimpleNamespace

from ..files import write_json
from ..models import PooledEncoderConfig
from ..run_folder import default_max_length, input_format

logger = logging.getLogger("hfclf")

MODULES_FILE = "modules.json"
MODEL_SETTINGS_FILE = "config_sentence_transformers.json"
TRANSFORMER_SETTINGS_FILE = "sentence_bert_config.json"
POOLING_FOLDER = "1_Pooling"
# The sentence-transformers release whose file layout this follows (`modality_config`, `pooling_mode`).
FORMAT_VERSION = "6.2.0"
TRANSFORMER_CLASS = "sentence_transformers.base.modules.transformer.Transformer"
POOLING_CLASS = "sentence_transformers.sentence_transformer.modules.pooling.Pooling"
# hfclf pooling -> `Pooling` mode(s) giving the same vector; the other poolings use the model's `pooler_output`.
POOLING_MODES = {"cls": "cls", "mean": "mean", "max": "max", "cls_mean": ["cls", "mean"]}


def write_sentence_transformers_files(folder: Path, config: dict, tokenizer) -> bool:
    """Write the sentence-transformers files into the exported model `folder` (module docstring), whose config.json
    is `config` and whose tokenizer is `tokenizer`; returns whether it wrote them (only for a full pooled-encoder
    model of single texts)."""
    folder = Path(folder)
    if config.get("model_type") != PooledEncoderConfig.model_type or not (folder / "config.json").is_file():
        return False
    fmt = input_format(config)
    if fmt["text_pair_column"]:
        logger.info("No sentence-transformers files: the model was trained on sentence pairs")
        return False
    if fmt["long_text"] != "truncate":  # sentence-transformers would cut a long text to its first tokens
        logger.info("No sentence-transformers files: the model reads long texts by --long_text %s", fmt["long_text"])
        return False
    model_config = PooledEncoderConfig.from_dict(config)
    mode = POOLING_MODES.get(model_config.pooling)
    if mode is not None and "cls" in mode and tokenizer.padding_side == "left":
        # hfclf's cls reads position 0, sentence-transformers' the first real token: a shorter text's padding, here
        logger.info("No sentence-transformers files: cls pooling with a tokenizer that pads on the left")
        return False
    transformer = {
        "transformer_task": "feature-extraction",
        "max_seq_length": default_max_length(SimpleNamespace(config=model_config), tokenizer),
    }
    modules = [{"idx": 0, "name": "0", "path": "", "type": TRANSFORMER_CLASS}]
    if mode is None:  # attention pooling: the model's own pooled vector
        output = {"modality_config": _text_output("pooler_output"), "module_output_name": "sentence_embedding"}
        transformer.update(output, unpad_inputs=False)
    else:
        transformer.update(modality_config=_text_output("last_hidden_state"), module_output_name="token_embeddings")
        modules.append({"idx": 1, "name": "1", "path": POOLING_FOLDER, "type": POOLING_CLASS})
        pooling = {"embedding_dimension": model_config.hidden_size, "pooling_mode": mode, "include_prompt": True}
        write_json(folder / POOLING_FOLDER / "config.json", pooling)
    write_json(folder / TRANSFORMER_SETTINGS_FILE, transformer)
    write_json(folder / MODULES_FILE, modules)
    write_json(
        folder / MODEL_SETTINGS_FILE,
        {
            "model_type": "SentenceTransformer",
            "__version__": {"sentence_transformers": FORMAT_VERSION},
            "prompts": {"query": "", "document": ""},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    return True


def _text_output(name: str) -> dict:
    """The `modality_config` of a `Transformer` module that takes output `name` of the model's forward for text."""
    return {"text": {"method": "forward", "method_output_name": name}}


__all__ = ["write_sentence_transformers_files"]
