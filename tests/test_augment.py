"""TinyBERT data augmentation: batched candidates == the official per-word
algorithm (re-written below at batch 1 with the official pure-Python BERT
tokenizer and gensim's most_similar), draws, pairs, cache, errors, CLI."""

import csv
import json
import logging
import random
import re

import keras
import numpy as np
import pytest
from gensim.models import KeyedVectors
from transformers.models.bert.tokenization_bert_legacy import \
    BertTokenizerLegacy

from tinybert_tf.augment import (NO_MLM_MESSAGE, STOP_WORDS, AugmentConfig,
                                 Augmenter, augment_dataset, load_glove,
                                 sample_variants)
from tinybert_tf.augment.masked_lm import build_row
from tinybert_tf.config import BertConfig
from tinybert_tf.backbone import BertBackbone
from tinybert_tf.heads import BertMaskedLM

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ("the a an and of in with over was is , . ! quick brown fox jump lazy "
         "dog cat play garden bright flower run chase green tree house car "
         "road big small red blue sun moon star river city old new fast slow "
         "happy sad day night bird fish book table chair window door").split()
CONTINUATIONS = ["##s", "##ing", "##ly", "##ed", "##er", "##ning", "##y"]
VOCAB = SPECIAL + WORDS + CONTINUATIONS

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A cat was playing in the garden with bright flowers!",
    "Running dogs chase the red car.",
    "Happy birds fly over the old river at night.",
    "The sun",
]
# Words of several pieces get GloVe neighbours; "birds" and "fly" are not
# among the first GLOVE_SIZE words, so they keep themselves.
GLOVE_WORDS = ("jumps playing flowers running dogs chase quickly trees houses "
               "cars roads stars rivers cities books tables chairs windows "
               "doors fishes days nights suns moons birds fly").split()
GLOVE_SIZE = 22
TOP_K = 6


# ---------------------------------------------------------------- fixtures

def tiny_masked_lm(vocab_size=len(VOCAB), max_positions=128, seed=0):
    keras.utils.set_random_seed(seed)
    config = BertConfig(vocab_size=vocab_size, hidden_size=16, num_layers=2,
                        num_heads=2, intermediate_size=32,
                        max_position_embeddings=max_positions)
    model = BertMaskedLM(BertBackbone(config))
    model(_inputs([[2, 5, 3]], [[0, 0, 0]], [1]))
    return model


def _inputs(token_ids, segment_ids, positions):
    token_ids = np.asarray(token_ids, "int32")
    return {"token_ids": token_ids,
            "segment_ids": np.asarray(segment_ids, "int32"),
            "padding_mask": np.ones_like(token_ids),
            "mask_positions": np.asarray(positions, "int32").reshape(
                len(token_ids), -1)}


@pytest.fixture(scope="module")
def mlm():
    return tiny_masked_lm()


@pytest.fixture(scope="module")
def glove():
    rng = np.random.default_rng(1)
    vectors = KeyedVectors(8)
    vectors.add_vectors(GLOVE_WORDS, rng.normal(size=(len(GLOVE_WORDS), 8)))
    return vectors


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n")
    return str(path)


def config(**changes):
    return AugmentConfig(**{"top_k": TOP_K, "glove_vocab_size": GLOVE_SIZE,
                            "progress": False, **changes})


# ------------------------------------------ the official algorithm, batch 1

def reference_candidates(sentence, mlm, vocab_file, glove, mode="pair"):
    """TinyBERT/data_augmentation.py's _word_augment, word by word."""
    tokenizer = BertTokenizerLegacy(vocab_file, do_lower_case=True)
    words = tokenizer.basic_tokenizer.tokenize(sentence)
    out = {}
    for index, word in enumerate(words):
        if re.search("[^a-z]", word.lower()) or word.lower() in STOP_WORDS:
            continue
        pieces = ["[CLS]"] + tokenizer.tokenize(sentence)
        span, seen = [], -1
        for i in range(1, len(pieces)):
            if "##" not in pieces[i]:
                seen += 1
                if seen < index:
                    span = []
                elif seen == index:
                    span = [i]
                else:
                    break
            else:
                span.append(i)
        if len(span) == 1:
            candidates = reference_mlm(tokenizer, pieces, span[0], mlm, mode)
        else:
            candidates = reference_glove(word, glove)
        out[index] = candidates or [word]
    return out


def reference_mlm(tokenizer, pieces, position, mlm, mode):
    original = list(pieces)
    pieces = list(pieces)
    pieces[position] = "[MASK]"
    tokens = pieces + ["[SEP]"]
    segments = [0] * len(tokens)
    if mode == "pair":
        tokens += original[1:] + ["[SEP]"]
        segments += [1] * len(original)
    ids = tokenizer.convert_tokens_to_ids(tokens)
    # The whole logits matrix, as BertForMaskedLM computes it.
    logits = np.asarray(mlm(_inputs([ids], [segments],
                                    [list(range(len(ids)))])))
    top = np.argsort(-logits[0, position])[:TOP_K]
    return [p for p in tokenizer.convert_ids_to_tokens(top.tolist())
            if not p.startswith("##")]


def reference_glove(word, glove):
    if word not in glove.key_to_index or glove.key_to_index[word] >= GLOVE_SIZE:
        return []
    return [w for w, _ in glove.most_similar(word, topn=TOP_K,
                                             restrict_vocab=GLOVE_SIZE)]


# ---------------------------------------------------------------- candidates

@pytest.mark.parametrize("mode", ["pair", "masked"])
def test_batched_candidates_equal_batch1_reference(mlm, glove, vocab_file,
                                                   mode):
    # A small token budget: several batches, rows of different sentences
    # padded together.
    augmenter = Augmenter(config(mlm_input=mode, tokens_per_batch=64), mlm,
                          glove, vocabulary=VOCAB)
    found = augmenter.candidates(SENTENCES)
    sources = set()
    for sentence, entry in zip(SENTENCES, found):
        expected = reference_candidates(sentence, mlm, vocab_file, glove, mode)
        assert entry.options == expected, sentence
        sources.update(entry.sources.values())
    assert sources == {"mlm", "glove"}
    birds = found[3]
    assert birds.options[birds.words.index("birds")] == ["birds"]


def test_continuation_pieces_are_dropped(mlm, glove):
    every = Augmenter(config(top_k=len(VOCAB)), mlm, glove, vocabulary=VOCAB)
    entry = every.candidates(["The lazy fox."])[0]
    fox = entry.options[entry.words.index("fox")]
    # All K = V predictions minus the ## pieces: every other piece, once.
    assert sorted(fox) == sorted(p for p in VOCAB if not p.startswith("##"))


def test_stop_words_and_non_letters_are_never_replaced(mlm, glove):
    entry = Augmenter(config(), mlm, glove, vocabulary=VOCAB).candidates(
        ["The cat and 3 dogs ran, fast!"])[0]
    assert entry.words == ["the", "cat", "and", "3", "dogs", "ran", ",",
                           "fast", "!"]
    assert sorted(entry.options) == [1, 4, 5, 7]  # cat dogs ran fast


def test_without_mlm_glove_serves_every_word_and_says_so_once(glove, caplog):
    with caplog.at_level(logging.WARNING, logger="tinybert_tf.augment"):
        data = augment_dataset(SENTENCES, None, None, config(), glove=glove)
    said = [r.getMessage() for r in caplog.records
            if r.name == "tinybert_tf.augment"]
    assert said == [NO_MLM_MESSAGE]
    assert data.counts["mlm_words"] == 0
    assert data.counts["glove_words"] == data.counts["candidate_words"] > 0
    entry = Augmenter(config(), None, glove).candidates(["The dogs chase."])[0]
    assert entry.options == {1: reference_glove("dogs", glove),
                             2: reference_glove("chase", glove)}


def test_bfloat16_gives_top_k_ids(mlm, glove):
    ids32 = Augmenter(config(), mlm, glove, VOCAB).masked_lm.top_ids(
        [([10, 11, 12], 1), ([13, 14], 0)])
    ids16 = Augmenter(config(dtype="bfloat16"), mlm, glove,
                      VOCAB).masked_lm.top_ids([([10, 11, 12], 1),
                                                ([13, 14], 0)])
    assert ids16.shape == ids32.shape == (2, TOP_K)
    assert ((0 <= ids16) & (ids16 < len(VOCAB))).all()
    assert all(len(set(row)) == TOP_K for row in ids16)


# ---------------------------------------------------------------- long input

def test_long_input_keeps_a_window_around_the_masked_piece():
    pieces = list(range(100, 140))  # 40 pieces; at most 9 fit in 21 tokens
    tokens, segments, position = build_row(pieces, 30, 2, 3, 4, "pair", 21)
    window = list(range(126, 135))  # 30 - 9 // 2 = 26 .. 34
    masked = [4 if p == 130 else p for p in window]
    assert tokens == [2] + masked + [3] + window + [3]
    assert segments == [0] * 11 + [1] * 10
    assert tokens[position] == 4 and position == 5
    assert build_row(pieces, 39, 2, 3, 4, "pair", 21)[0][1:10] == (
        list(range(131, 139)) + [4])
    tokens, segments, position = build_row(pieces, 0, 2, 3, 4, "masked", 12)
    assert tokens == [2, 4] + list(range(101, 110)) + [3]
    assert position == 1 and segments == [0] * 12


def test_long_sentence_fits_the_position_table(glove):
    small = tiny_masked_lm(max_positions=32)
    sentence = " ".join(["the big red car"] * 12)  # 48 pieces
    data = augment_dataset([sentence], None, None, config(), small, glove,
                           vocabulary=VOCAB)
    assert data.counts["mlm_words"] == 36 and data.text_a[0] == sentence


# ---------------------------------------------------------------- draws

def official_draws(sentence, words, options, n, p, rng):
    """The official `augment` loop (candidate, then the coin, per word)."""
    out = [sentence]
    for _ in range(n):
        new = list(words)
        for index in options:
            candidate = rng.choice(options[index])
            if rng.random() < p:
                new[index] = candidate
        if " ".join(new) not in out:
            out.append(" ".join(new))
    return out


def test_sample_variants_follow_the_official_draws():
    words = ["a", "big", "dog", "ran", "."]
    options = {1: ["small", "huge", "red"], 2: ["cat", "fox"], 3: ["ran"]}
    for seed in range(5):
        ours = sample_variants("A big dog ran.", words, options, 20, 0.4,
                               random.Random(seed))
        assert ours == official_draws("A big dog ran.", words, options, 20,
                                      0.4, random.Random(seed))
    none = sample_variants("A big dog ran.", words, options, 20, 0.0,
                           random.Random(0))
    assert none == ["A big dog ran.", "a big dog ran ."]
    assert sample_variants("A big dog ran.", words, options, 20, 0.0,
                           random.Random(0), keep_unchanged=False) == [
        "A big dog ran."]


def test_dataset_keeps_originals_drops_duplicates_repeats_labels(mlm, glove):
    labels = np.arange(len(SENTENCES)) * 10
    data = augment_dataset(SENTENCES, None, labels, config(num_samples=8),
                           mlm, glove, vocabulary=VOCAB)
    assert len(data.text_a) == len(data.labels) == len(data.source_index)
    for example, sentence in enumerate(SENTENCES):
        rows = [t for t, s in zip(data.text_a, data.source_index)
                if s == example]
        assert rows[0] == sentence
        assert len(rows) == len(set(rows)) <= 9
    np.testing.assert_array_equal(data.labels, labels[data.source_index])
    assert list(data.source_index) == sorted(data.source_index)
    assert len(data.text_a) > len(SENTENCES)


def test_seeded_and_independent_of_batching(mlm, glove):
    def run(**changes):
        return augment_dataset(SENTENCES, None, None, config(**changes), mlm,
                               glove, vocabulary=VOCAB).text_a

    first = run(seed=3)
    assert run(seed=3, tokens_per_batch=16, length_multiple=1,
               examples_per_chunk=2) == first
    assert run(seed=4) != first


def test_pairs_are_augmented_column_by_column(mlm, glove):
    text_a = ["The quick fox jumps.", "A cat was playing."]
    text_b = ["Dogs chase the red car.", "The sun"]
    data = augment_dataset(text_a, text_b, np.array([0.5, 1.5]), config(),
                           mlm, glove, vocabulary=VOCAB)
    augmenter = Augmenter(config(), mlm, glove, vocabulary=VOCAB)
    for example in range(2):
        rows = [(a, b) for a, b, s in zip(data.text_a, data.text_b,
                                          data.source_index) if s == example]
        assert rows[0] == (text_a[example], text_b[example])
        changed_a = [a for a, b in rows[1:] if a != text_a[example]]
        changed_b = [b for a, b in rows[1:] if b != text_b[example]]
        # Every variant changes one column and keeps the other original.
        assert len(changed_a) + len(changed_b) == len(rows) - 1
        assert all(b == text_b[example] for a, b in rows[1:]
                   if a != text_a[example])
        # Each column's variants are that sentence's own draws.
        for column, texts, changed in ((0, text_a, changed_a),
                                       (1, text_b, changed_b)):
            expected = augmenter._variants(
                texts[example], dict(zip(texts, augmenter.candidates(texts))),
                example, column)
            assert changed == expected[1:]
    assert set(data.labels.tolist()) == {0.5, 1.5}


# ---------------------------------------------------------------- cache

def test_cache_hit_on_rerun(mlm, glove, tmp_path, monkeypatch):
    first = augment_dataset(SENTENCES, None, np.ones(5), config(), mlm, glove,
                            cache_dir=tmp_path, vocabulary=VOCAB)
    assert not first.counts["cache_hit"]

    def fail(*args, **kwargs):
        raise AssertionError("candidates recomputed on a cache hit")

    monkeypatch.setattr(Augmenter, "candidates", fail)
    again = augment_dataset(SENTENCES, None, np.ones(5), config(), mlm, glove,
                            cache_dir=tmp_path, vocabulary=VOCAB)
    assert again.counts["cache_hit"]
    assert again.text_a == first.text_a
    np.testing.assert_array_equal(again.source_index, first.source_index)
    with pytest.raises(AssertionError, match="recomputed"):
        augment_dataset(SENTENCES, None, None, config(seed=1), mlm, glove,
                        cache_dir=tmp_path, vocabulary=VOCAB)
    other_mlm = tiny_masked_lm(seed=1)
    with pytest.raises(AssertionError, match="recomputed"):
        augment_dataset(SENTENCES, None, None, config(), other_mlm, glove,
                        cache_dir=tmp_path, vocabulary=VOCAB)


# ---------------------------------------------------------------- errors

def test_empty_or_inconsistent_dataset_is_rejected(glove):
    with pytest.raises(ValueError, match="empty"):
        augment_dataset([], None, None, config(), glove=glove)
    with pytest.raises(ValueError, match="text_b has 1 texts"):
        augment_dataset(["a b", "c d"], ["e"], None, config(), glove=glove)
    with pytest.raises(ValueError, match="labels"):
        augment_dataset(["a b"], None, np.array([1, 2]), config(), glove=glove)
    with pytest.raises(TypeError, match=r"text_a\[1\]"):
        augment_dataset(["a b", None], None, None, config(), glove=glove)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="replace_prob"):
        AugmentConfig(replace_prob=1.5)
    with pytest.raises(ValueError, match="mlm_input"):
        AugmentConfig(mlm_input="sentence")
    with pytest.raises(ValueError, match="No official augmentation preset"):
        AugmentConfig.for_task("imdb")
    assert AugmentConfig.for_task("SST-2").num_samples == 20
    assert AugmentConfig.for_task("glue/mnli").num_samples == 10


def test_mlm_vocabulary_must_be_its_own(mlm, glove, vocab_file, tmp_path):
    with pytest.raises(ValueError, match=f"vocab_size is {len(VOCAB)}"):
        Augmenter(config(), mlm, glove, vocabulary=VOCAB[:-1])
    with pytest.raises(ValueError, match="without a vocabulary"):
        Augmenter(config(), mlm, glove)
    student = VOCAB[:5] + list(reversed(VOCAB[5:]))
    mlm.vocab_file = vocab_file
    try:
        with pytest.raises(ValueError, match="differs from the masked LM's"):
            Augmenter(config(), mlm, glove, vocabulary=student)
        assert Augmenter(config(), mlm, glove).vocabulary == VOCAB
    finally:
        del mlm.vocab_file


# A failed no-header read of gensim 4.4.0 leaves its reopened file open (see
# pytest.ini); the file is closed whenever the exception is collected, here.
@pytest.mark.filterwarnings(
    "ignore:unclosed file <_io.BufferedReader:ResourceWarning")
def test_glove_files(glove, tmp_path):
    words = glove.index_to_key
    lines = [w + " " + " ".join(f"{x:.6f}" for x in glove[w]) for w in words]
    glove_txt = tmp_path / "glove.txt"
    glove_txt.write_text("\n".join(lines) + "\n")
    word2vec = tmp_path / "vectors.txt"
    word2vec.write_text(f"{len(words)} 8\n" + "\n".join(lines) + "\n")
    for path in (glove_txt, word2vec):
        loaded = load_glove(path)
        assert loaded.index_to_key == words
        np.testing.assert_allclose(loaded.vectors, glove.vectors, atol=1e-6)
    assert len(load_glove(glove_txt, limit=5)) == 5
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        load_glove(tmp_path / "missing.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("king 0.1 0.2\nqueen 0.3 oops\n")
    with pytest.raises(ValueError, match="bad.txt"):
        load_glove(bad)
    with pytest.raises(FileNotFoundError):
        augment_dataset(["a b"], None, None, config(),
                        glove=str(tmp_path / "missing.txt"))


# ---------------------------------------------------------------- CLI

def test_mlm_loads_from_a_checkpoint_with_its_vocabulary(mlm, glove,
                                                          tmp_path):
    from tinybert_tf import checkpoint
    checkpoint.save(mlm, tmp_path / "mlm", VOCAB)
    loaded = Augmenter(config(), str(tmp_path / "mlm"), glove)
    assert loaded.vocabulary == VOCAB
    in_memory = Augmenter(config(), mlm, glove, vocabulary=VOCAB)
    assert loaded.candidates(SENTENCES) == in_memory.candidates(SENTENCES)


def test_cli_augments_a_tsv_and_copies_other_columns(mlm, glove, tmp_path,
                                                     capsys):
    from tinybert_tf import checkpoint
    from trainers import augment as cli
    checkpoint.save(mlm, tmp_path / "mlm", VOCAB)
    glove_txt = tmp_path / "glove.txt"
    glove_txt.write_text("\n".join(
        w + " " + " ".join(f"{x:.6f}" for x in glove[w])
        for w in glove.index_to_key) + "\n")
    source = tmp_path / "train.tsv"
    source.write_text("id\tsentence\tlabel\n1\tDogs chase \"cars\".\t0\n"
                      "2\tThe stars and rivers.\t1\n")
    output = tmp_path / "out" / "train_aug.jsonl"
    assert cli.main(["--input", str(source), "--text-column", "sentence",
                     "--output", str(output), "--glove", str(glove_txt),
                     "--mlm", str(tmp_path / "mlm"), "--n", "5",
                     "--glove-vocab-size", str(GLOVE_SIZE), "--k",
                     str(TOP_K), "--no-cache", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    # chase: one piece (MLM); dogs, cars, stars, rivers: word + ##s (GloVe)
    assert (summary["mlm_words"], summary["glove_words"]) == (1, 4)
    assert summary["examples"] == 2
    assert summary["augmented_examples"] == len(rows) > 2
    assert rows[0] == {"id": "1", "sentence": 'Dogs chase "cars".',
                       "label": "0"}
    assert {r["label"] for r in rows if r["id"] == "2"} == {"1"}

    tsv = tmp_path / "train_aug.tsv"
    assert cli.main(["--input", str(source), "--text-column", "sentence",
                     "--output", str(tsv), "--glove", str(glove_txt), "--n",
                     "5", "--mlm", str(tmp_path / "mlm"), "--glove-vocab-size",
                     str(GLOVE_SIZE), "--k", str(TOP_K), "--no-cache",
                     "--quiet"]) == 0
    with open(tsv, newline="") as f:
        back = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert [r["sentence"] for r in back] == [r["sentence"] for r in rows]
    assert cli.main(["--input", str(source), "--glove", str(glove_txt),
                     "--no-cache", "--quiet"]) == 2
    assert "no column 'text'" in capsys.readouterr().err
