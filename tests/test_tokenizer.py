"""`BertTextTokenizer` against Hugging Face's `BertTokenizerFast` on real text.

Sentences come from the news of gensim's Lee corpus and from its Wikipedia
excerpt (markup removed by gensim's `filter_wiki`, case, accents, Greek,
non-breaking spaces and punctuation kept).
"""

import bz2
import re

import numpy as np
import pytest
import tensorflow as tf

from tinybert_tf import assets
from tinybert_tf.config import BertConfig
from tinybert_tf.tokenizer import BertTextTokenizer

SEQUENCE_LENGTH = 64
HF_NAMES = {"token_ids": "input_ids", "segment_ids": "token_type_ids",
            "padding_mask": "attention_mask"}


def split_sentences(text):
    sentences = re.split(r"(?<=[.!?])\s+", text)
    return [s.strip() for s in sentences if len(s.split()) >= 3]


def lee_sentences(count):
    with open(assets.gensim_text_files()[1], encoding="utf-8") as f:
        return split_sentences(f.read())[:count]


def wikipedia_sentences(count):
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki
    sentences = []
    with bz2.open(assets.gensim_text_files()[0], "rb") as f:
        for _, text, _ in extract_pages(f):
            sentences += split_sentences(filter_wiki(text))
            if len(sentences) >= count:
                return sentences[:count]
    return sentences


@pytest.fixture(scope="module")
def sentences():
    found = wikipedia_sentences(250) + lee_sentences(150)
    # The sample must hold the hard cases the comparison is about.
    assert any(re.search(r"[^\x00-\x7f]", s) for s in found)  # accents...
    assert any("\xa0" in s for s in found)  # non-breaking space
    assert any(re.search(r"[A-Z]{2}", s) for s in found)
    assert any(re.search(r"[\"'();:-]", s) for s in found)
    return found


@pytest.fixture(scope="module")
def vocab_file():
    return f"{assets.minilm_dir()}/vocab.txt"


@pytest.fixture(scope="module")
def tokenizer(vocab_file):
    return BertTextTokenizer(vocab_file, sequence_length=SEQUENCE_LENGTH)


@pytest.fixture(scope="module")
def hugging_face():
    transformers = pytest.importorskip("transformers")
    return transformers.BertTokenizerFast.from_pretrained(assets.minilm_dir())


def assert_same_as_hugging_face(ours, theirs, texts):
    for name, hf_name in HF_NAMES.items():
        mine = np.asarray(ours[name])
        differ = np.flatnonzero((mine != theirs[hf_name]).any(axis=1))
        assert not differ.size, (
            f"{name} differs from HF's {hf_name} on {differ.size} rows, first "
            f"{texts[differ[0]]!r}: {mine[differ[0]]} vs "
            f"{theirs[hf_name][differ[0]]}")


def test_single_sentences_match_hugging_face(tokenizer, hugging_face,
                                             sentences):
    theirs = hugging_face(sentences, padding="max_length", truncation=True,
                          max_length=SEQUENCE_LENGTH, return_tensors="np")
    lengths = [len(hugging_face.tokenize(s)) for s in sentences]
    assert max(lengths) > SEQUENCE_LENGTH - 2  # some are truncated
    assert_same_as_hugging_face(tokenizer(sentences), theirs, sentences)


@pytest.mark.parametrize("sequence_length", [SEQUENCE_LENGTH, 24])
def test_sentence_pairs_match_hugging_face_longest_first(
        vocab_file, hugging_face, sentences, sequence_length):
    """Consecutive sentences; at 24 most pairs are cut, in both texts, which
    pins Hugging Face's split of the budget (odd token to the longer text,
    to the second one on a tie)."""
    first, second = sentences[:-1], sentences[1:]
    tokenizer = BertTextTokenizer(vocab_file, sequence_length=sequence_length)
    theirs = hugging_face(first, second, padding="max_length",
                          truncation="longest_first",
                          max_length=sequence_length, return_tensors="np")
    lengths = [(len(hugging_face.tokenize(a)), len(hugging_face.tokenize(b)))
               for a, b in zip(first, second)]
    budget = sequence_length - 3
    assert any(a + b > budget for a, b in lengths)
    if sequence_length == 24:
        assert any(a == b and a > budget // 2 for a, b in lengths)
    assert_same_as_hugging_face(tokenizer(first, second), theirs,
                                list(zip(first, second)))


WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight"]
TINY_VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]


def tiny_ids(text):
    return [TINY_VOCABULARY.index(word) for word in text.split()]


def test_pair_truncation_by_hand():
    """Budget 5: two 4-word texts -> 2 + 3 (HF keeps the odd piece for the
    second text on a tie); 6 + 4 words -> 3 + 2; 1 + 6 words -> 1 + 4."""
    tokenizer = BertTextTokenizer(TINY_VOCABULARY, sequence_length=8)
    out = tokenizer(["one two three four", "one two three four five six",
                     "one"],
                    ["five six seven eight", "five six seven eight",
                     "two three four five six seven"])
    cls, sep, pad = 2, 3, 0
    assert out["token_ids"].numpy().tolist() == [
        [cls, *tiny_ids("one two"), sep, *tiny_ids("five six seven"), sep],
        [cls, *tiny_ids("one two three"), sep, *tiny_ids("five six"), sep],
        [cls, *tiny_ids("one"), sep, *tiny_ids("two three four five"), sep]]
    assert out["segment_ids"].numpy().tolist() == [
        [0] * 4 + [1] * 4, [0] * 5 + [1] * 3, [0] * 3 + [1] * 5]
    short = tokenizer(["one"], ["two three"])
    assert short["token_ids"].numpy().tolist() == [
        [cls, *tiny_ids("one"), sep, *tiny_ids("two three"), sep, pad, pad]]
    assert short["padding_mask"].numpy().tolist() == [[1] * 6 + [0] * 2]


def test_other_truncations_are_keras_hub_packers():
    texts = (["one two three four"], ["five six seven eight"])
    round_robin = BertTextTokenizer(TINY_VOCABULARY, 8, truncate="round_robin")
    waterfall = BertTextTokenizer(TINY_VOCABULARY, 8, truncate="waterfall")
    # round robin: the first text gets the odd piece; waterfall fills it first.
    assert round_robin(*texts)["segment_ids"].numpy().tolist() == [
        [0] * 5 + [1] * 3]
    assert waterfall(*texts)["segment_ids"].numpy().tolist() == [
        [0] * 6 + [1] * 2]


def test_normalisation_matches_hugging_face(tokenizer, hugging_face):
    """The Unicode cases keras-hub's own pre-tokenisation gets wrong."""
    texts = ["1.58\xa0million", "Proudhon\u00b4s ideas", "ΑΧΙΛΛΕΥΣ",
             "Straße ﬁne", "zero\u200bwidth", "Café RÉSUMÉ", "tab\there"]
    theirs = hugging_face(texts, padding="max_length", truncation=True,
                          max_length=SEQUENCE_LENGTH, return_tensors="np")
    assert_same_as_hugging_face(tokenizer(texts), theirs, texts)


def test_unbatched_text_gives_unbatched_outputs(tokenizer):
    single = tokenizer("The cat sat.", "On the mat.")
    batch = tokenizer(["The cat sat."], ["On the mat."])
    for name in HF_NAMES:
        assert single[name].shape == (SEQUENCE_LENGTH,)
        np.testing.assert_array_equal(single[name], batch[name][0])
    pieces = tokenizer.tokenize("The cat sat.")
    assert pieces.shape.rank == 1
    assert pieces.numpy().tolist() == tokenizer.tokenize(
        ["The cat sat."]).to_list()[0]


def test_works_inside_tf_data_like_eagerly(tokenizer, sentences):
    first, second = sentences[:16], sentences[1:17]
    eager = tokenizer(first, second)
    ds = tf.data.Dataset.from_tensor_slices((first, second))
    ds = ds.map(tokenizer).batch(8)
    assert ds.element_spec["token_ids"].shape.as_list() == [
        None, SEQUENCE_LENGTH]
    rows = list(ds.as_numpy_iterator())
    for name in HF_NAMES:
        np.testing.assert_array_equal(
            np.concatenate([row[name] for row in rows]), eager[name])


def test_vocabulary_without_special_tokens_is_rejected():
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        BertTextTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the"])


def test_bad_arguments_are_rejected(vocab_file, tmp_path):
    with pytest.raises(ValueError, match="sequence_length"):
        BertTextTokenizer(vocab_file, sequence_length=2)
    with pytest.raises(ValueError, match="truncate"):
        BertTextTokenizer(vocab_file, truncate="left")
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        BertTextTokenizer(str(tmp_path / "missing.txt"))


def test_check_model(vocab_file):
    config = BertConfig.from_preset("minilm-l6-h384")
    BertTextTokenizer(vocab_file, sequence_length=512).check_model(config)
    with pytest.raises(ValueError, match="513.*max_position_embeddings 512"):
        BertTextTokenizer(vocab_file, sequence_length=513).check_model(config)
    with pytest.raises(ValueError, match="30522 word-pieces.*vocab_size is 100"):
        BertTextTokenizer(vocab_file).check_model(config.replace(vocab_size=100))


def test_doctests():
    import doctest
    from tinybert_tf import tokenizer
    assert doctest.testmod(tokenizer).failed == 0
