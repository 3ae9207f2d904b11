"""Using and sharing a trained run: `predict`/`eval`/`embed` (`predict`), the ONNX backend (`onnx_backend`), what a
model costs (`cost`), and the shareable folder (`hub`, `model_card`, `sentence_transformers_export`)."""
