"""ONNX: `export_onnx` writes a classifier as an ONNX graph (and, optionally, its int8 dynamic quantization) into an
exported folder's `onnx/`, and `OnnxClassifier` runs that graph with ONNX Runtime in place of the torch model, for
`hfclf predict/eval/embed --backend onnx` (or `onnx-int8`).

The graph has two outputs: `logits` (exactly the classifier's, regression outputs on the targets' scale) and
`sentence_embedding` (for hfclf models the pooled vector its head sees, for other models the mean of the last hidden
states over real tokens: the vectors `hfclf embed` gives), so one file serves predict, eval and embed.
"""

import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from ..errors import HfclfInputError

logger = logging.getLogger("hfclf")

ONNX_FOLDER = "onnx"
# Not `model.onnx`: sentence-transformers and optimum take that name for a graph of token vectors, and this one is not.
BACKEND_FILES = {"onnx": "classifier.onnx", "onnx-int8": "classifier_int8.onnx"}
BACKENDS = ("torch", *BACKEND_FILES)
OUTPUTS = ("logits", "sentence_embedding")
OPSET = 18
WEIGHTS_KEY = "hfclf_weights_sha256"  # the graph's metadata: the weights it was exported from


def onnx_file(model_dir, backend: str) -> Path:
    """The graph file of `backend` in an exported folder; a one-line error naming the export command if missing."""
    path = Path(model_dir) / ONNX_FOLDER / BACKEND_FILES[backend]
    if not path.is_file():
        flags = "--onnx --int8" if backend == "onnx-int8" else "--onnx"
        raise HfclfInputError(
            f"--backend {backend} needs {path}, which does not exist; write it with `hfclf export RUN_DIR OUT_DIR "
            f"{flags}` and pass --model OUT_DIR (or use --backend torch)."
        )
    return path


def _need_runtime():
    try:
        import onnxruntime
    except ImportError:
        raise HfclfInputError(
            "The ONNX backend needs onnxruntime (and onnx, onnxscript to export); install them with "
            "`pip install 'hfclf[onnx]'`."
        ) from None
    return onnxruntime


# ----------------------------------------------------------------------------------------------------------- export


def _graph_module(classifier, own_pooling: bool):
    """A module returning `(logits, sentence_embedding)` from the classifier's one forward pass."""
    import torch

    from ..models.modeling_heads import masked_mean

    class Graph(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.classifier = classifier
            self.encoded = None
            # the encoder's output is computed inside the classifier's forward pass; keep it on the way
            classifier.base_model.register_forward_hook(self._keep_encoded)

        def _keep_encoded(self, module, args, output):
            self.encoded = output

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                inputs["token_type_ids"] = token_type_ids
            logits = self.classifier(**inputs, return_dict=True).logits
            if own_pooling:  # hfclf's pooled vector, as `hfclf embed` gives it
                return logits, self.encoded.pooler_output
            return logits, masked_mean(self.encoded.last_hidden_state, attention_mask)  # embed's mean pooling

    return Graph().eval()


def export_onnx(model_dir, folder, int8: bool = False) -> None:
    """Write `folder/onnx/classifier.onnx` (and `classifier_int8.onnx`, weights quantized to int8, with `int8`) of the
    classifier in `model_dir` (a run or exported folder; a LoRA run is merged); batch size and sequence length stay
    dynamic.

    The export runs in a fresh Python process: torch's exporter keeps state between exports in one process (a second
    LSTM export there gets a fixed sequence length)."""
    _need_runtime()
    try:
        import onnxscript  # noqa: F401  (the torch exporter needs it)
    except ImportError:
        raise HfclfInputError("--onnx needs onnx and onnxscript; install them with `pip install 'hfclf[onnx]'`.")
    logger.info("Exporting %s to ONNX%s", model_dir, " and quantizing it to int8" if int8 else "")
    command = [
        sys.executable,
        "-m",
        "hfclf.inference.onnx_backend",
        str(model_dir),
        str(folder),
        *(["--int8"] if int8 else []),
    ]
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise HfclfInputError(
            f"The ONNX export of {model_dir} failed: {lines[-1] if lines else 'no message'}. Export without --onnx, "
            "or report this with the model's config."
        )


def _export_in_this_process(model_dir, folder, int8: bool) -> None:
    import torch

    from ..architectures import hfclf_architecture_of
    from ..run_folder import load_run

    run = load_run(model_dir)
    classifier, tokenizer = run.classifier(), run.tokenizer()
    target = Path(folder) / ONNX_FOLDER
    target.mkdir(parents=True, exist_ok=True)
    own_pooling = hfclf_architecture_of(classifier.config.model_type) is not None
    graph = _graph_module(classifier.float().cpu(), own_pooling)
    example = dict(tokenizer(["an example text to trace", "a second, longer example text to trace with"], padding=True))
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in example]
    example = {name: torch.as_tensor(example[name]) for name in names}
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    path = target / BACKEND_FILES["onnx"]
    with torch.no_grad():
        torch.onnx.export(
            graph,
            (),
            str(path),
            kwargs=example,
            input_names=names,
            output_names=list(OUTPUTS),
            dynamic_shapes={name: {0: batch, 1: sequence} for name in names},
            opset_version=OPSET,
            external_data=False,
            verbose=False,
        )
    graphs = [path]
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        graphs.append(target / BACKEND_FILES["onnx-int8"])
        quantize_dynamic(str(path), str(graphs[1]), weight_type=QuantType.QInt8)
    _record_weights(graphs, weights_fingerprint(folder))


def weights_fingerprint(folder) -> str:
    """SHA-256 of the weight files (`*.safetensors`) of a model folder, which a graph exported from them records."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.safetensors")):
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _record_weights(graphs: list[Path], fingerprint: str) -> None:
    import onnx

    for path in graphs:
        graph = onnx.load(str(path))
        props = {prop.key: prop.value for prop in graph.metadata_props}  # kept: set_model_props replaces them all
        onnx.helper.set_model_props(graph, {**props, WEIGHTS_KEY: fingerprint})
        onnx.save(graph, str(path))


# ---------------------------------------------------------------------------------------------------------- runtime


class OnnxClassifier:
    """Stands in for the torch classifier in `predict.classify`/`embed`: `model(**batch)` with torch tensors returns
    `logits`, `pooler_output` (the sentence embedding) and, given `labels`, the loss the model computes."""

    def __init__(self, path: Path, config, device="cpu"):
        ort = _need_runtime()
        providers = ["CPUExecutionProvider"]
        if getattr(device, "type", str(device)) == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), providers=providers)
        except Exception as error:  # onnxruntime raises its own exception types for unreadable graphs
            raise HfclfInputError(
                f"Cannot load {path}: {str(error).splitlines()[0]}. Export it again with `hfclf export ... --onnx`."
            ) from None
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.config = config

    @classmethod
    def from_run(cls, run, backend: str, device="cpu") -> "OnnxClassifier":
        """The graph of `backend` in the folder of `run` (a `run_folder.Run`), with the classifier's config; a graph
        exported from other weights than the folder's is refused."""
        classifier = cls(onnx_file(run.path, backend), run.model_config(), device)
        recorded = classifier.session.get_modelmeta().custom_metadata_map.get(WEIGHTS_KEY)
        if recorded is not None and recorded != weights_fingerprint(run.path):
            raise HfclfInputError(
                f"{onnx_file(run.path, backend)} was exported from other weights than the model in {run.path}; export "
                "the model again with `hfclf export RUN_DIR OUT_DIR --onnx` (or use --backend torch)."
            )
        return classifier

    def __call__(self, labels=None, **batch):
        import torch

        from ..models.modeling_heads import classification_loss, target_scale

        feed = {name: batch[name].cpu().numpy() for name in self.inputs if name in batch}
        if "token_type_ids" in self.inputs and "token_type_ids" not in feed:
            feed["token_type_ids"] = torch.zeros_like(batch["input_ids"]).cpu().numpy()
        logits, pooled = (torch.from_numpy(value) for value in self.session.run(list(OUTPUTS), feed))
        loss = None
        if labels is not None:
            scale = target_scale(self.config)
            scaled = logits if scale is None else (logits - scale[0]) / scale[1]  # the loss sees the model's scale
            loss = classification_loss(scaled, labels.cpu(), self.config)
        return SimpleNamespace(logits=logits, pooler_output=pooled, loss=loss)

    def to(self, device):
        return self


__all__ = ["BACKENDS", "OnnxClassifier", "export_onnx", "onnx_file"]

if __name__ == "__main__":  # the process `export_onnx` starts
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    _export_in_this_process(sys.argv[1], sys.argv[2], int8="--int8" in sys.argv[3:])
