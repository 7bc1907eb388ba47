"""Length-bucketed batches (`training.make_dataset(bucketing=True)`): each
example once per epoch, batches cut to a multiple of 16, similar lengths
together, evaluation order kept, and the same model outputs as full padding;
and the automatic sequence length of trainers.task."""

import numpy as np

from tinybert_tf import training
from tinybert_tf import task_distillation as td
from tinybert_tf.backbone import BertBackbone
from tinybert_tf.heads import BertClassifier
from tinybert_tf.tasks import Split
from tinybert_tf.tokenizer import BertTextTokenizer
from tiny import VOCAB, WORDS, tiny_config

RNG = np.random.default_rng(0)
WORD_LIST = list(WORDS)
# Mostly short texts and a few long ones, as in a real short-text task.
TEXTS = [" ".join(RNG.choice(WORD_LIST, size=int(n)))
         for n in np.where(RNG.random(300) < 0.9, RNG.integers(1, 10, 300),
                           RNG.integers(30, 60, 300))]
SPLIT = Split(TEXTS, None, RNG.integers(0, 2, len(TEXTS)))
TOKENIZER = BertTextTokenizer(VOCAB, sequence_length=64)


def batches(**options):
    data = training.make_dataset(SPLIT, TOKENIZER, 8, bucketing=True,
                                 targets=np.arange(len(SPLIT))[:, None],
                                 **options)
    return data, [(x, y.numpy(), t.numpy()[:, 0].astype(int))
                  for x, y, t in data]


def test_every_example_once_per_epoch_with_its_label():
    data, found = batches(shuffle=True)
    ids = np.concatenate([t for _, _, t in found])
    assert sorted(ids) == list(range(len(SPLIT)))
    assert int(data.cardinality()) == len(found) == -(-len(SPLIT) // 8)
    for _, labels, ids in found:
        assert (labels == SPLIT.labels[ids]).all()


def test_batches_are_cut_to_a_multiple_of_16_that_holds_the_longest():
    _, found = batches(shuffle=True)
    for inputs, _, _ in found:
        width = inputs["token_ids"].shape[1]
        longest = int(inputs["padding_mask"].numpy().sum(1).max())
        assert width % training.BUCKET_STEP == 0 or width == 64
        assert longest <= width < longest + training.BUCKET_STEP


def test_shuffled_batches_group_similar_lengths():
    _, bucketed = batches(shuffle=True)
    plain = training.make_dataset(SPLIT, TOKENIZER, 8, shuffle=True)
    def padded(found):
        return sum(int(x["token_ids"].shape[1]) for x, *_ in found)
    assert padded(bucketed) < 0.5 * sum(64 for _ in plain)
    spread = [np.ptp(x["padding_mask"].numpy().sum(1)) for x, *_ in bucketed]
    assert np.median(spread) <= 2


def test_drop_remainder_drops_only_the_last_partial_batch():
    data, found = batches(shuffle=True, drop_remainder=True)
    assert int(data.cardinality()) == len(found) == len(SPLIT) // 8
    assert all(len(labels) == 8 for _, labels, _ in found)


def test_unshuffled_batches_keep_the_order():
    _, found = batches(shuffle=False)
    assert list(np.concatenate([t for _, _, t in found])) == list(
        range(len(SPLIT)))


def test_model_outputs_do_not_depend_on_the_padding():
    model = BertClassifier(BertBackbone(tiny_config()), 2)
    full = training.predict(model, training.make_dataset(SPLIT, TOKENIZER, 16))
    cut = training.predict(model, training.make_dataset(SPLIT, TOKENIZER, 16,
                                                        bucketing=True))
    np.testing.assert_allclose(cut, full, atol=1e-4)


def test_automatic_sequence_length_holds_99_percent_rounded_up():
    length, needed = td.automatic_sequence_length(SPLIT, TOKENIZER, cap=512)
    counts = TOKENIZER.lengths(SPLIT.text_a)
    assert np.mean(counts <= needed) >= 0.99
    assert length % 16 == 0 and needed <= length < needed + 16
    assert td.automatic_sequence_length(SPLIT, TOKENIZER, cap=16)[0] == 16


def test_fit_sequence_length_keeps_a_given_length():
    tokenizer, how = td.fit_sequence_length(SPLIT, TOKENIZER, given=64)
    assert tokenizer is TOKENIZER and how == "--sequence-length"
    short = Split(["the cat"] * 10, None, np.zeros(10, int))
    tokenizer, how = td.fit_sequence_length(short, TOKENIZER)
    assert tokenizer.sequence_length == 16 and how.startswith("automatic")
