"""Training pieces of tinybert_tf.training: the official drop of the last
partial batch, datasets without tf.data's autotuning thread, and the choice
of the dev metric that selects the best step."""

import numpy as np

from tinybert_tf import training
from tinybert_tf.backbone import BertBackbone
from tinybert_tf.heads import BertClassifier
from tinybert_tf.tasks import Split
from tinybert_tf.tokenizer import BertTextTokenizer
from tiny import VOCAB, tiny_config

SPLIT = Split(["the cat sat", "a dog ran", "news", "the market rose",
               "team won"], None, np.array([0, 1, 1, 0, 1]))


def test_drop_remainder_drops_the_last_partial_batch():
    tokenizer = BertTextTokenizer(VOCAB, sequence_length=8)
    kept = training.make_dataset(SPLIT, tokenizer, batch_size=2)
    dropped = training.make_dataset(SPLIT, tokenizer, batch_size=2,
                                    shuffle=True, drop_remainder=True)
    assert [len(y) for _, y in kept] == [2, 2, 1]
    assert [len(y) for _, y in dropped] == [2, 2]
    assert int(dropped.cardinality()) == 2


def test_datasets_run_without_the_autotuning_thread():
    """Its sleep made iterator destruction stall up to a minute (docs/speed.md)."""
    tokenizer = BertTextTokenizer(VOCAB, sequence_length=8)
    for dataset in (training.make_dataset(SPLIT, tokenizer, 2),
                    training.make_dataset(SPLIT, tokenizer, 2, shuffle=True,
                                          bucketing=True)):
        assert dataset.options().autotune.enabled is False


def test_best_on_dev_selects_on_the_given_metric(monkeypatch):
    """Step 1 has the better F1, step 2 the better accuracy: the selection
    metric decides which is kept, and both metrics are reported."""
    labels = np.array([1, 1, 0, 0, 0, 0])
    script = iter([np.array([1, 1, 1, 1, 1, 1]),    # f1 0.50, accuracy 0.33
                   np.array([0, 0, 0, 0, 0, 0])])   # f1 0.00, accuracy 0.67
    monkeypatch.setattr(training, "predict",
                        lambda model, dataset: np.eye(2)[next(script)])
    model = BertClassifier(BertBackbone(tiny_config()), 2)
    dev = training.DevSet(None, labels, ("f1",), select_metric="accuracy")
    best = training.BestOnDev(model, dev, every_steps=1, verbose=0)
    for _ in range(2):
        best.on_train_batch_end(0)
    assert best.primary == "accuracy" and best.best_step == 2
    assert set(best.best_metrics) == {"f1", "accuracy"}
    assert [h["f1"] for h in best.history] == [0.5, 0.0]
