"""hfclf computes without cuDNN's attention, whose per-shape plans made bf16 runs on batches of varying length slow
on a GPU (docs/PERFORMANCE.md): in training, evaluation, prediction and embedding, and only while it computes."""

import pytest
import torch
from test_finetune import QUICK, data_flags
from transformers import BertModel

from hfclf.attention import varying_length_attention
from hfclf.commands.cli import main as cli
from hfclf.commands.finetune import main as train


@pytest.mark.parametrize("before", [True, False])
def test_setting_is_restored(before):
    torch.backends.cuda.enable_cudnn_sdp(before)
    try:
        with varying_length_attention():
            assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.cudnn_sdp_enabled() is before
        with pytest.raises(KeyError), varying_length_attention():
            raise KeyError("a failed forward")
        assert torch.backends.cuda.cudnn_sdp_enabled() is before
    finally:
        torch.backends.cuda.enable_cudnn_sdp(True)


def test_every_command_computes_without_cudnn_attention(tmp_path, tiny_encoder_dir, toy_data, monkeypatch):
    """The flag as each forward of the encoder saw it: a run (train, dev evaluation, test prediction), then
    predict, eval and embed on its folder."""
    seen = []
    forward = BertModel.forward

    def recording_forward(self, *args, **kwargs):
        seen.append(torch.backends.cuda.cudnn_sdp_enabled())
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(BertModel, "forward", recording_forward)
    assert torch.backends.cuda.cudnn_sdp_enabled()
    run = tmp_path / "run"
    argv = ["--model", tiny_encoder_dir, "--pooling", "mean", "--output_dir", run, *data_flags(toy_data), *QUICK]
    commands = {
        "train": lambda: train([str(word) for word in argv]),
        "predict": lambda: cli(["predict", "--model", str(run), "--input", str(toy_data["test"]),
                                "--output", str(tmp_path / "predictions.csv")]),
        "eval": lambda: cli(["eval", "--model", str(run), "--test-file", str(toy_data["test"])]),
        "embed": lambda: cli(["embed", "--model", str(run), "--input", str(toy_data["test"]),
                              "--output", str(tmp_path / "vectors.npy")]),
    }  # fmt: skip
    for name, command in commands.items():
        seen.clear()
        assert command() == 0, name
        assert seen and not any(seen), f"{name}: {seen.count(True)} of {len(seen)} forwards could use cuDNN attention"
        assert torch.backends.cuda.cudnn_sdp_enabled(), f"{name} left cuDNN attention off"
