"""Checkpoints: our format round trip, and every foreign source we read.

Foreign checkpoints are written by the libraries that own the format (tiny
random models of `transformers` + torch, of keras-hub), then read back here.
"""

import json
import os
import sys

import keras
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from tinybert_tf import checkpoint
from tinybert_tf.backbone import BertBackbone, dummy_inputs
from tinybert_tf.config import BertConfig
from tinybert_tf.heads import BertClassifier, BertMaskedLM

VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [
    f"word{i}" for i in range(35)]
CONFIG = BertConfig(vocab_size=40, hidden_size=16, num_layers=2, num_heads=4,
                    intermediate_size=24, max_position_embeddings=16)
INPUTS = {"token_ids": np.array([[2, 7, 9, 3, 0, 0], [2, 11, 3, 14, 15, 3]],
                                "int32"),
          "segment_ids": np.array([[0] * 6, [0, 0, 0, 1, 1, 1]], "int32"),
          "padding_mask": np.array([[1, 1, 1, 1, 0, 0], [1] * 6], "int32")}
MASK_POSITIONS = np.array([[1, 2], [4, 1]], "int32")


def built(model, **extra):
    keras.utils.set_random_seed(0)
    model({**INPUTS, **extra})
    # Random biases and LayerNorm parameters: a swapped tensor cannot hide.
    rng = np.random.default_rng(1)
    for variable in model.weights:
        variable.assign(rng.normal(size=variable.shape) * 0.1
                        + (variable.path.endswith("gamma")))
    return model


def assert_same_weights(model, other):
    mine, theirs = (checkpoint.model_variables(m) for m in (model, other))
    assert sorted(mine) == sorted(theirs)
    for name, (variable, _) in mine.items():
        np.testing.assert_array_equal(variable.numpy(),
                                      theirs[name][0].numpy(), err_msg=name)


# ------------------------------------------------------- our own format

def test_classifier_round_trip_is_exact(tmp_path):
    model = built(BertClassifier(BertBackbone(CONFIG), num_labels=3, head="tanh_relu",
                                 label_names=["neg", "neutral", "pos"],
                                 pooling="mean"))
    path = tmp_path / "classifier"
    checkpoint.save(model, path, VOCABULARY, extras={"step": 7})
    loaded = checkpoint.load_classifier(path)
    assert loaded.config == CONFIG
    assert (loaded.num_labels, loaded.head, loaded.label_names,
            loaded.pooling) == (3, "tanh_relu", ["neg", "neutral", "pos"],
                                "mean")
    assert_same_weights(model, loaded)
    np.testing.assert_array_equal(loaded(INPUTS).numpy(), model(INPUTS).numpy())
    assert checkpoint.read_vocabulary(loaded.vocab_file) == VOCABULARY
    assert checkpoint.read(path).extras["step"] == 7
    assert sorted(os.listdir(tmp_path)) == ["classifier"]  # no staging left


def test_backbone_and_masked_lm_round_trips_are_exact(tmp_path):
    backbone = built(BertBackbone(CONFIG))
    checkpoint.save(backbone, tmp_path / "backbone", VOCABULARY)
    loaded = checkpoint.load_backbone(tmp_path / "backbone")
    assert loaded.config == CONFIG
    assert_same_weights(backbone, loaded)

    masked_lm = built(BertMaskedLM(BertBackbone(CONFIG)), mask_positions=MASK_POSITIONS)
    checkpoint.save(masked_lm, tmp_path / "mlm", tmp_path / "backbone/vocab.txt")
    loaded = checkpoint.load_masked_lm(tmp_path / "mlm")
    assert_same_weights(masked_lm, loaded)
    inputs = {**INPUTS, "mask_positions": MASK_POSITIONS}
    np.testing.assert_array_equal(loaded(inputs).numpy(),
                                  masked_lm(inputs).numpy())
    # The masked LM's backbone serves a classifier: a new head is created.
    classifier = checkpoint.load_classifier(tmp_path / "mlm", num_labels=2)
    assert_same_weights(masked_lm.backbone, classifier.backbone)


def test_extra_weights_are_saved_and_config_overrides_apply(tmp_path):
    model = built(BertBackbone(CONFIG))
    projection = np.arange(16 * 32, dtype="float32").reshape(32, 16)
    checkpoint.save(model, tmp_path / "m", VOCABULARY,
                    extra_weights={"fit_dense.weight": projection})
    np.testing.assert_array_equal(
        checkpoint.read(tmp_path / "m").weights["fit_dense.weight"], projection)
    loaded = checkpoint.load_backbone(tmp_path / "m", hidden_act="gelu_new",
                                      attention_mask_value=-30.0)
    assert loaded.config == CONFIG.replace(hidden_act="gelu_new",
                                           attention_mask_value=-30.0)


def test_saved_classifier_runs_in_transformers(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = built(BertClassifier(BertBackbone(CONFIG), num_labels=3,
                                 label_names=["a", "b", "c"]))
    checkpoint.save(model, tmp_path / "c", VOCABULARY)
    theirs = transformers.BertForSequenceClassification.from_pretrained(
        tmp_path / "c").eval()
    assert theirs.config.id2label == {0: "a", 1: "b", 2: "c"}
    with torch.no_grad():
        logits = theirs(
            input_ids=torch.tensor(INPUTS["token_ids"], dtype=torch.long),
            token_type_ids=torch.tensor(INPUTS["segment_ids"], dtype=torch.long),
            attention_mask=torch.tensor(INPUTS["padding_mask"])).logits
    np.testing.assert_allclose(model(INPUTS).numpy(), logits.numpy(),
                               atol=1e-5)
    tokenizer = transformers.BertTokenizerFast.from_pretrained(tmp_path / "c")
    assert tokenizer.convert_tokens_to_ids(["[CLS]", "word3"]) == [2, 8]


def test_overwrite_is_refused_then_replaces(tmp_path):
    first = built(BertBackbone(CONFIG))
    checkpoint.save(first, tmp_path / "m", VOCABULARY)
    second = BertBackbone(CONFIG)
    second(dummy_inputs())
    with pytest.raises(FileExistsError, match="already exists.*overwrite"):
        checkpoint.save(second, tmp_path / "m", VOCABULARY)
    assert_same_weights(first, checkpoint.load_backbone(tmp_path / "m"))
    checkpoint.save(second, tmp_path / "m", VOCABULARY, overwrite=True)
    assert_same_weights(second, checkpoint.load_backbone(tmp_path / "m"))
    assert sorted(os.listdir(tmp_path)) == ["m"]


def test_interrupted_save_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    first = built(BertBackbone(CONFIG))
    checkpoint.save(first, tmp_path / "m", VOCABULARY)
    import safetensors.numpy

    def crash(tensors, filename):  # dies half-way through writing
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.numpy, "save_file", crash)
    second = BertBackbone(CONFIG)
    second(dummy_inputs())
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(second, tmp_path / "m", VOCABULARY, overwrite=True)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(second, tmp_path / "new", VOCABULARY)
    assert sorted(os.listdir(tmp_path)) == ["m"]
    assert_same_weights(first, checkpoint.load_backbone(tmp_path / "m"))


def test_save_rejects_a_vocabulary_of_the_wrong_size(tmp_path):
    model = built(BertBackbone(CONFIG))
    with pytest.raises(ValueError, match="39 tokens but the model's "
                                         "vocab_size is 40"):
        checkpoint.save(model, tmp_path / "m", VOCABULARY[:-1])
    assert not os.listdir(tmp_path)


# ------------------------------------------------------- Hugging Face

@pytest.fixture(scope="module")
def hf_masked_lm(tmp_path_factory):
    """A tiny random BertForMaskedLM saved by transformers, three ways."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = transformers.BertForMaskedLM(transformers.BertConfig(
        **{**CONFIG.to_hf_dict(), "architectures": ["BertForMaskedLM"]})).eval()
    with torch.no_grad():  # non-zero biases and LayerNorm parameters
        for name, parameter in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                parameter.add_(0.1 * torch.randn_like(parameter))
    root = tmp_path_factory.mktemp("hf")
    model.save_pretrained(root / "single", safe_serialization=True)
    model.save_pretrained(root / "sharded", max_shard_size="20KB")
    os.makedirs(root / "torch_bin")
    torch.save(model.state_dict(), root / "torch_bin" / "pytorch_model.bin")
    for name in ("single", "sharded", "torch_bin"):
        (root / name / "vocab.txt").write_text("\n".join(VOCABULARY) + "\n")
    (root / "torch_bin" / "config.json").write_text(
        (root / "single" / "config.json").read_text())
    with torch.no_grad():
        logits = model(
            input_ids=torch.tensor(INPUTS["token_ids"], dtype=torch.long),
            token_type_ids=torch.tensor(INPUTS["segment_ids"], dtype=torch.long),
            attention_mask=torch.tensor(INPUTS["padding_mask"])).logits.numpy()
    return root, np.take_along_axis(logits, MASK_POSITIONS[..., None], axis=1)


@pytest.mark.parametrize("layout", ["single", "sharded", "torch_bin"])
def test_hugging_face_masked_lm_gives_the_same_logits(hf_masked_lm, layout):
    root, expected = hf_masked_lm
    if layout == "sharded":
        assert os.path.exists(root / layout / "model.safetensors.index.json")
        assert len([f for f in os.listdir(root / layout)
                    if f.endswith(".safetensors")]) > 1
    model = checkpoint.load_masked_lm(root / layout)
    logits = model({**INPUTS, "mask_positions": MASK_POSITIONS}).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_original_gamma_beta_names_load(hf_masked_lm, tmp_path):
    """Original BERT checkpoints (bert-base-uncased's) name LayerNorm
    parameters gamma/beta; transformers renames them, so must we."""
    root, expected = hf_masked_lm
    weights = load_file(root / "single" / "model.safetensors")
    renamed = {n.replace("LayerNorm.weight", "LayerNorm.gamma")
                .replace("LayerNorm.bias", "LayerNorm.beta"): v
               for n, v in weights.items()}
    assert renamed.keys() != weights.keys()
    os.makedirs(tmp_path / "old")
    save_file(renamed, tmp_path / "old" / "model.safetensors")
    for name in ("config.json", "vocab.txt"):
        (tmp_path / "old" / name).write_text((root / "single" / name).read_text())
    model = checkpoint.load_masked_lm(tmp_path / "old")
    logits = model({**INPUTS, "mask_positions": MASK_POSITIONS}).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_torch_bin_without_torch_is_a_clear_import_error(hf_masked_lm,
                                                         monkeypatch):
    root, _ = hf_masked_lm
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch fails
    with pytest.raises(ImportError, match="pytorch_model.bin.*torch is not "
                                          "installed.*safetensors"):
        checkpoint.read(root / "torch_bin")


def test_hugging_face_classifier_loads_with_its_head(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(1)
    theirs = transformers.BertForSequenceClassification(transformers.BertConfig(
        **CONFIG.to_hf_dict(), num_labels=4)).eval()
    theirs.save_pretrained(tmp_path / "c")
    (tmp_path / "c" / "vocab.txt").write_text("\n".join(VOCABULARY))
    with torch.no_grad():
        expected = theirs(
            input_ids=torch.tensor(INPUTS["token_ids"], dtype=torch.long),
            token_type_ids=torch.tensor(INPUTS["segment_ids"], dtype=torch.long),
            attention_mask=torch.tensor(INPUTS["padding_mask"])).logits
    model = checkpoint.load_classifier(tmp_path / "c")
    assert (model.num_labels, model.head) == (4, "linear")
    np.testing.assert_allclose(model(INPUTS).numpy(), expected.numpy(),
                               atol=1e-5)
    with pytest.raises(ValueError, match="4-label classifier but "
                                         "num_labels=2"):
        checkpoint.load_classifier(tmp_path / "c", num_labels=2)


def test_hub_id_offline_is_a_clear_os_error(monkeypatch):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(OSError, match="'someone/bert-tiny'.*not a local "
                                      "directory.*no network"):
        checkpoint.read("someone/bert-tiny")


# ------------------------------------------------------- keras-hub

@pytest.fixture(scope="module")
def keras_hub_presets(tmp_path_factory):
    keras_hub = pytest.importorskip("keras_hub")
    keras.utils.set_random_seed(2)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=40, num_layers=2, num_heads=4, hidden_dim=16,
        intermediate_dim=24, max_sequence_length=16)
    rng = np.random.default_rng(3)
    for variable in backbone.weights:
        if variable.path.endswith(("bias", "beta")):
            variable.assign(0.1 * rng.normal(size=variable.shape))
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=VOCABULARY)
    root = tmp_path_factory.mktemp("keras_hub")
    backbone.save_to_preset(root / "backbone")
    tokenizer.save_to_preset(root / "backbone")
    masked_lm = keras_hub.models.BertMaskedLM(
        backbone=backbone, preprocessor=keras_hub.models.BertMaskedLMPreprocessor(
            tokenizer=tokenizer, sequence_length=16))
    masked_lm.masked_lm_head._bias.assign(rng.normal(size=40))
    masked_lm.save_to_preset(root / "masked_lm")
    return root, backbone, masked_lm


def test_keras_hub_preset_gives_the_same_outputs(keras_hub_presets):
    """keras-hub's BERT runs the tanh GELU; the reader says so in the config
    (hidden_act="gelu_new"), so the loaded model matches without overrides."""
    root, backbone, _ = keras_hub_presets
    ckpt = checkpoint.read(root / "backbone")
    assert ckpt.config.hidden_act == "gelu_new"
    assert ckpt.vocabulary() == VOCABULARY
    assert "cls.predictions.bias" not in ckpt.weights  # no random MLM head
    model = checkpoint.load_backbone(ckpt)
    ours, theirs = model(INPUTS), backbone(INPUTS)
    np.testing.assert_allclose(ours["sequence_output"].numpy(),
                               theirs["sequence_output"].numpy(), atol=1e-5)
    np.testing.assert_allclose(ours["pooled_output"].numpy(),
                               theirs["pooled_output"].numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="no masked-LM head"):
        checkpoint.load_masked_lm(ckpt)


def test_keras_hub_masked_lm_preset_head_is_read(keras_hub_presets):
    root, _, masked_lm = keras_hub_presets
    weights = checkpoint.read(root / "masked_lm").weights
    head = masked_lm.masked_lm_head
    np.testing.assert_array_equal(weights["cls.predictions.bias"],
                                  head._bias.numpy())
    np.testing.assert_array_equal(
        weights["cls.predictions.transform.dense.weight"],
        head._intermediate_dense.kernel.numpy().T)


# ------------------------------------------------------- bad input

@pytest.fixture()
def saved_backbone(tmp_path):
    checkpoint.save(built(BertBackbone(CONFIG)), tmp_path / "m", VOCABULARY)
    return tmp_path / "m"


def test_shape_mismatch_names_the_tensor_and_both_shapes(saved_backbone):
    config = json.loads((saved_backbone / "config.json").read_text())
    config["intermediate_size"] = 20
    (saved_backbone / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"'bert\.encoder\.layer\.0\."
                                         r"intermediate\.dense\.weight' has "
                                         r"shape \(24, 16\).*needs \(20, 16\)"):
        checkpoint.load_backbone(saved_backbone)


def test_missing_backbone_tensor_is_named(saved_backbone):
    path = saved_backbone / "model.safetensors"
    weights = load_file(path)
    del weights["bert.encoder.layer.1.attention.self.key.bias"]
    save_file(weights, path)
    with pytest.raises(ValueError, match="no tensor 'bert.encoder.layer.1."
                                         "attention.self.key.bias'"):
        checkpoint.load_backbone(saved_backbone)


def test_missing_files(saved_backbone, tmp_path):
    os.remove(saved_backbone / "model.safetensors")
    with pytest.raises(FileNotFoundError, match="No weights in .*expected "
                                                "model.safetensors"):
        checkpoint.read(saved_backbone)
    os.remove(saved_backbone / "config.json")
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        checkpoint.read(saved_backbone)
    with pytest.raises(FileNotFoundError, match="'.*nowhere' does not exist"):
        checkpoint.read(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="is a file"):
        checkpoint.read(saved_backbone / "vocab.txt")
    with pytest.raises(FileNotFoundError, match="Vocabulary file not found"):
        checkpoint.read_vocabulary(tmp_path / "missing.txt")


def test_wrong_heads_are_rejected(saved_backbone):
    with pytest.raises(ValueError, match="no classifier head: pass "
                                         "num_labels"):
        checkpoint.load_classifier(saved_backbone)
    with pytest.raises(ValueError, match="no masked-LM head"):
        checkpoint.load_masked_lm(saved_backbone)


def test_non_bert_model_type_is_rejected(saved_backbone):
    config = json.loads((saved_backbone / "config.json").read_text())
    (saved_backbone / "config.json").write_text(
        json.dumps({**config, "model_type": "roberta"}))
    with pytest.raises(ValueError, match="model_type 'roberta' is not a BERT"):
        checkpoint.read(saved_backbone)


def test_doctests():
    import doctest
    assert doctest.testmod(checkpoint).failed == 0
