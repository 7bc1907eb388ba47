"""Per-layer head counts and FFN widths across the model family: config,
layers, checkpoints (ours and Hugging Face transformers), distiller.

A pruned model must equal the unpruned one with the same heads and neurons
gated to zero.
"""

import json

import numpy as np
import pytest

from tests.tiny import VOCAB, tiny_config
from tinybert_tf import checkpoint, pruning
from tinybert_tf.backbone import BertBackbone, dummy_inputs
from tinybert_tf.config import BertConfig
from tinybert_tf.heads import BertClassifier, clone_classifier

CONFIG = dict(num_layers=3, num_heads=4, hidden_size=16, intermediate_size=24)
# Layer 1 loses every head; layer 2 keeps all of them and all neurons.
PLAN = pruning.PruningPlan(
    heads=((0, 2, 3), (), (0, 1, 2, 3)),
    neurons=(np.array([0, 3, 5, 7, 20]), np.arange(2, 24, 2), np.arange(24)))


def inputs(batch=2, length=9, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, length), "int32")
    mask[1, 6:] = 0
    return {"token_ids": rng.integers(5, len(VOCAB), (batch, length)).astype("int32"),
            "segment_ids": np.zeros((batch, length), "int32"),
            "padding_mask": mask}


def random_classifier(seed=0):
    import keras
    keras.utils.set_random_seed(seed)
    model = BertClassifier(BertBackbone(tiny_config(**CONFIG), name="bert"),
                           num_labels=3, label_names=["a", "b", "c"])
    model(dummy_inputs())
    rng = np.random.default_rng(seed)
    for variable in model.weights:  # non-zero biases and LayerNorms
        variable.assign(np.asarray(variable.numpy())
                        + 0.2 * rng.standard_normal(variable.shape))
    return model


def gated(model, plan):
    """A copy of `model` with the heads and neurons `plan` drops gated to
    zero (rows of the output projections they feed set to 0)."""
    copy = clone_classifier(model, model.get_weights())
    d = model.config.head_size
    for i, layer in enumerate(copy.backbone.transformer_layers):
        kernel = np.asarray(layer.attention_output.kernel.numpy())
        for h in range(model.config.num_heads):
            if h not in plan.heads[i]:
                kernel[h * d:(h + 1) * d] = 0
        layer.attention_output.kernel.assign(kernel)
        kernel = np.asarray(layer.output_dense.kernel.numpy())
        drop = np.setdiff1d(np.arange(kernel.shape[0]), plan.neurons[i])
        kernel[drop] = 0
        layer.output_dense.kernel.assign(kernel)
    return copy


def test_unpruned_config_serialises_as_before():
    config = BertConfig.from_preset("tinybert-3l-192d")
    assert "heads_kept" not in config.to_dict()
    assert "intermediate_sizes" not in config.to_json()
    # Full per-layer lists are the unpruned config itself.
    same = config.replace(heads_kept=[list(range(12))] * 3,
                          intermediate_sizes=[768] * 3)
    assert same == config and not same.is_pruned


def test_pruned_config_round_trip_and_checks():
    config = PLAN.config(tiny_config(**CONFIG))
    assert config.heads_kept == PLAN.heads
    assert config.intermediate_sizes == (5, 11, 24)
    assert BertConfig.from_json(config.to_json()) == config
    assert config.pruned_heads() == {0: [1], 1: [0, 1, 2, 3]}
    with pytest.raises(ValueError, match="heads_kept\\[0\\]"):
        tiny_config(**CONFIG, heads_kept=[[0, 9], [], [1]])
    with pytest.raises(ValueError, match="intermediate_sizes"):
        tiny_config(**CONFIG, intermediate_sizes=[0, 24, 24])


def test_hf_pruned_heads_read_as_heads_kept():
    values = dict(tiny_config(**CONFIG).to_hf_dict(),
                  pruned_heads={"0": [1], "1": [0, 1, 2, 3]})
    assert BertConfig.from_dict(values).heads_kept == PLAN.heads[:2] + (
        (0, 1, 2, 3),)


def test_pruned_model_equals_gated_unpruned_model():
    model = random_classifier()
    small = pruning.prune(model, PLAN)
    assert small.config.layer_num_heads(1) == 0
    assert small.count_params() < model.count_params()
    assert small.backbone.count_params() == small.config.num_parameters()
    x = inputs()
    ours, theirs = small.features(x), gated(model, PLAN).features(x)
    np.testing.assert_allclose(ours["logits"], theirs["logits"], atol=1e-5)
    for a, b in zip(ours["hidden_states"], theirs["hidden_states"]):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # The kept heads' scores are the original heads'.
    np.testing.assert_allclose(ours["attention_scores"][0],
                               np.take(theirs["attention_scores"][0],
                                       [0, 2, 3], axis=1), atol=1e-5)
    assert tuple(ours["attention_scores"][1].shape) == (2, 0, 9, 9)


def test_second_round_prunes_the_pruned_model():
    model = random_classifier()
    small = pruning.prune(model, PLAN)
    again = pruning.PruningPlan(((2,), (), (1, 3)),
                                (np.array([1, 4]), np.array([0]), np.arange(5)))
    smaller = pruning.prune(small, again)
    both = pruning.PruningPlan(((2,), (), (1, 3)),
                               (np.array([3, 20]), np.array([2]), np.arange(5)))
    x = inputs()
    np.testing.assert_allclose(smaller(x), gated(model, both)(x), atol=1e-5)


def test_save_load_round_trip(tmp_path):
    small = pruning.prune(random_classifier(), PLAN)
    checkpoint.save(small, tmp_path / "s", VOCAB)
    raw = json.loads((tmp_path / "s" / "config.json").read_text())
    # Hugging Face sees the unpruned shapes (zero blocks; see checkpoint).
    assert raw["num_attention_heads"] == 4 and raw["intermediate_size"] == 24
    assert "pruned_heads" not in raw
    loaded = checkpoint.load_classifier(tmp_path / "s")
    assert loaded.config == small.config
    x = inputs()
    np.testing.assert_allclose(loaded(x), small(x), atol=1e-6)
    assert loaded.count_params() == small.count_params()


def test_transformers_loads_pruned_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    small = pruning.prune(random_classifier(), PLAN)
    checkpoint.save(small, tmp_path / "s", VOCAB)
    theirs = transformers.BertModel.from_pretrained(tmp_path / "s").eval()
    x = inputs()
    with torch.no_grad():
        out = theirs(input_ids=torch.tensor(x["token_ids"], dtype=torch.long),
                     token_type_ids=torch.tensor(x["segment_ids"], dtype=torch.long),
                     attention_mask=torch.tensor(x["padding_mask"]),
                     output_hidden_states=True)
    ours = small.features(x)["hidden_states"]
    for a, b in zip(ours, out.hidden_states):
        np.testing.assert_allclose(np.asarray(a), b.numpy(), atol=1e-4)


def test_distiller_pairs_remaining_heads_with_their_teacher_heads():
    from tinybert_tf.distiller import Distiller
    from tinybert_tf.layer_mapping import LayerMapping
    teacher = random_classifier(seed=1)
    student = pruning.prune(random_classifier(seed=2), PLAN)
    distiller = Distiller(teacher, student, mapping=LayerMapping(3, 3),
                          stage="intermediate")
    x = inputs()
    s_out, t_out = student.features(x), teacher.features(x)
    losses = distiller.compute_losses(s_out, t_out, x["padding_mask"])
    s0 = np.asarray(s_out["attention_scores"][0])
    t0 = np.take(np.asarray(t_out["attention_scores"][0]), [0, 2, 3], axis=1)
    zero = lambda a: np.where(a <= -100, 0, a)  # the official masking
    np.testing.assert_allclose(float(losses["attention_loss_1"]),
                               np.mean((zero(s0) - zero(t0)) ** 2), rtol=1e-5)
    assert float(losses["attention_loss_2"]) == 0.0  # no heads left


def test_a_pruned_teacher_is_refused_for_the_attention_loss():
    from tinybert_tf.distiller import Distiller
    from tinybert_tf.layer_mapping import LayerMapping
    teacher = pruning.prune(random_classifier(seed=1), PLAN)
    with pytest.raises(ValueError, match="unpruned teacher"):
        Distiller(teacher, random_classifier(seed=2),
                  mapping=LayerMapping(3, 3))


def test_compact_checkpoint_with_hf_pruned_heads_is_read(tmp_path):
    """A transformers 4.x pruned BERT: `pruned_heads` in config.json and
    the remaining heads' tensors only (transformers 5.x refuses it)."""
    from safetensors.numpy import save_file
    small = pruning.prune(random_classifier(), pruning.PruningPlan(
        ((0, 2, 3), (1,), (0, 1, 2, 3)), (np.arange(24),) * 3))
    checkpoint.save(small, tmp_path / "s", VOCAB)
    save_file({name: np.ascontiguousarray(
        np.asarray(v.numpy()).T if transposed else np.asarray(v.numpy()))
        for name, (v, transposed) in checkpoint.model_variables(small).items()},
        tmp_path / "s" / "model.safetensors")
    config = json.loads((tmp_path / "s" / "config.json").read_text())
    del config["heads_kept"]
    config["pruned_heads"] = {"0": [1], "1": [0, 2, 3]}
    (tmp_path / "s" / "config.json").write_text(json.dumps(config))
    loaded = checkpoint.load_classifier(tmp_path / "s")
    assert loaded.config.heads_kept == small.config.heads_kept
    x = inputs()
    np.testing.assert_allclose(loaded(x), small(x), atol=1e-6)
