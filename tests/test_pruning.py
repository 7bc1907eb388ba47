"""tinybert_tf.pruning: importance scores, selection for a target, rounds
and recovery by distillation (tiny models)."""

import numpy as np
import pytest

from tests.test_pruned_models import CONFIG, random_classifier
from tests.tiny import VOCAB, WORDS, tiny_config
from tinybert_tf import pruning
from tinybert_tf.tasks import Split, TaskData
from tinybert_tf.tokenizer import BertTextTokenizer

pytestmark = pytest.mark.slow


def toy_task(n=24, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    texts = [" ".join(rng.choice(WORDS[3 * y:3 * y + 6], 5)) for y in labels]
    split = Split(texts, None, labels)
    return TaskData("toy", split, split, split, ["a", "b", "c"], False,
                    ("accuracy",))


def toy_inputs():
    from tinybert_tf.task_distillation import TaskInputs
    return TaskInputs(toy_task(), BertTextTokenizer(VOCAB, 12), batch_size=8)


def test_parse_keep():
    assert pruning.parse_keep("0.5") == 0.5
    assert pruning.parse_keep("24") == 24 and isinstance(
        pruning.parse_keep("24"), int)
    for bad in ("half", "1.5", "-3", "0.0"):
        with pytest.raises(ValueError, match="--ffn-keep"):
            pruning.parse_keep(bad, "--ffn-keep")


def test_importance_is_the_gradient_of_a_gate():
    """|dL/dxi| of head 1 of layer 0, by central differences on a gate
    that scales the head's context (its rows of the output projection)."""
    import keras
    model = random_classifier()
    inputs = toy_inputs()
    batch = next(iter(inputs.make(inputs.train)))
    scores = pruning.importance(model, [batch])
    assert [len(h) for h in scores.heads] == [4, 4, 4]
    assert [len(n) for n in scores.neurons] == [24, 24, 24]
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    kernel = model.backbone.transformer_layers[0].attention_output.kernel
    original = np.asarray(kernel.numpy())
    d, eps, values = model.config.head_size, 1e-2, []
    for sign in (1, -1):
        scaled = original.copy()
        scaled[d:2 * d] *= 1 + sign * eps
        kernel.assign(scaled)
        values.append(float(loss(batch[1], model(batch[0]))))
    kernel.assign(original)
    numeric = abs(values[0] - values[1]) / (2 * eps)
    np.testing.assert_allclose(scores.heads[0][1], numeric, rtol=2e-2)


def scores_of(heads, neurons):
    return pruning.Importance([np.asarray(h, float) for h in heads],
                              [np.asarray(n, float) for n in neurons])


def test_select_ranks_heads_across_layers_and_may_empty_a_layer():
    config = tiny_config(**CONFIG)
    # Normalised per layer: .71 .71 0 0 / .5 .5 .5 .5 / .58 .58 .58 0.
    scores = scores_of([[10, 10, 0, 0], [1, 1, 1, 1], [10, 10, 10, 0]],
                       [np.arange(24)] * 3)
    plan = pruning.select(config, scores, heads_keep=5)
    assert plan.heads == ((0, 1), (), (0, 1, 2))
    assert [len(n) for n in plan.neurons] == [24, 24, 24]
    assert pruning.select(config, scores, heads_keep=0.5).heads[1] == (0,)


def test_select_ffn_keeps_one_neuron_per_layer():
    config = tiny_config(**CONFIG)
    scores = scores_of([[1] * 4] * 3,
                       [np.arange(24) + 100, np.arange(24) + 100,
                        np.ones(24) * 1e-6])
    plan = pruning.select(config, scores.normalised(), ffn_keep=6)
    assert [len(n) for n in plan.neurons][2] >= 1
    assert sum(len(n) for n in plan.neurons) == 6
    np.testing.assert_array_equal(plan.neurons[0][-2:], [22, 23])


def test_select_for_a_parameter_budget():
    config = tiny_config(**CONFIG)
    rng = np.random.default_rng(0)
    scores = scores_of(rng.random((3, 4)), rng.random((3, 24)))
    budget = config.non_embedding_parameters() // 2
    plan = pruning.select(config, scores, params_keep=0.5)
    pruned = plan.config(config)
    assert pruned.non_embedding_parameters() <= budget
    assert pruned.non_embedding_parameters() > 0.4 * budget * 2
    with pytest.raises(ValueError, match="--heads-keep 99"):
        pruning.select(config, scores, heads_keep=99)


def test_round_targets_interpolate_to_the_final_one():
    config = tiny_config(**CONFIG)
    options = pruning.PruneOptions(heads_keep=0.5, ffn_keep=0.25, rounds=2)
    assert options.targets(config, 1) == {"heads_keep": 9, "ffn_keep": 45}
    assert options.targets(config, 2) == {"heads_keep": 6, "ffn_keep": 18}
    with pytest.raises(ValueError, match="either"):
        pruning.PruneOptions(heads_keep=0.5, params_keep=0.5)


def test_two_rounds_without_recovery():
    result = pruning.prune_and_recover(
        random_classifier(seed=1), random_classifier(seed=2), toy_inputs(),
        pruning.PruneOptions(heads_keep=0.5, ffn_keep=0.5, rounds=2))
    config = result.student.config
    assert sum(config.layer_num_heads(i) for i in range(3)) == 6
    assert sum(config.layer_intermediate_size(i) for i in range(3)) == 36
    assert [r.non_embedding_parameters for r in result.rounds] == sorted(
        (r.non_embedding_parameters for r in result.rounds), reverse=True)
    assert all(r.after_recovery is None for r in result.rounds)


def test_prune_and_recover():
    from tinybert_tf.task_distillation import TaskDistillationConfig
    inputs = toy_inputs()
    student = random_classifier(seed=2)
    recovery = TaskDistillationConfig(batch_size=8, intermediate_epochs=1,
                                      prediction_epochs=1, eval_every=0)
    result = pruning.prune_and_recover(
        random_classifier(seed=1), student, inputs, pruning.PruneOptions(
            heads_keep=0.5, ffn_keep=0.5, recovery=recovery))
    assert set(result.projections) == {"fit_dense.weight", "fit_dense.bias"}
    report = result.report(student)
    assert report["parameters"]["after"] < report["parameters"]["before"]
    assert sum(len(r["heads_removed"]) for r in report["removed"]) == 6
    assert set(report["scores"]) == {"before_pruning", "after_pruning",
                                     "after_recovery"}
    assert report["scores"]["after_recovery"]["test"]["accuracy"] >= 0
    assert report["rounds"][0]["recovery_best_step"] is not None
