"""`Augmenter` and `augment_dataset`: TinyBERT's data augmentation end to end.

For every distinct sentence: split it into words (BERT basic tokenizer);
for each eligible word ([a-z]+, not a stop word) find K candidates, the
masked LM's top-K predictions for a word of one word-piece, the K nearest
GloVe words for a word of several; then make N draws, each replacing every
eligible word with probability p by a random candidate, keep the original
and drop duplicates. Sentence pairs: each column is augmented from its own
original while the other column stays original.

Example:
>>> import numpy as np
>>> from gensim.models import KeyedVectors
>>> from tinybert_tf.augment import AugmentConfig, augment_dataset
>>> glove = KeyedVectors(2)
>>> glove.add_vectors(["film", "movie", "great", "good"],
...                   np.array([[1, 0], [0.9, 0.2], [0, 1], [0.2, 0.9]]))
>>> config = AugmentConfig(num_samples=4, replace_prob=1.0, top_k=1,
...                        progress=False)
>>> data = augment_dataset(["A great film."], None, np.array([1]), config,
...                        glove=glove)  # no masked LM: GloVe for all words
>>> data.text_a, data.labels.tolist()
(['A great film.', 'a good movie .'], [1, 1])
>>> text_a, text_b, labels, counts, source_index = data
>>> counts["glove_words"], source_index.tolist()
(2, [0, 0])
"""

import logging
import os
import random
import sys
import time
from typing import NamedTuple

import numpy as np
from gensim.models import KeyedVectors
from tqdm.auto import tqdm

from tinybert_tf import console
from tinybert_tf.augment import cache as cache_lib
from tinybert_tf.augment.config import AugmentConfig
from tinybert_tf.augment.glove import GloveNeighbours, load_glove
from tinybert_tf.augment.masked_lm import MaskedLMCandidates
from tinybert_tf.augment.words import WordSplitter, is_replaceable

logger = logging.getLogger("tinybert_tf.augment")

NO_MLM_MESSAGE = (
    "Data augmentation runs WITHOUT a masked LM (mlm=None): every eligible "
    "word gets GloVe neighbours, including words of one word-piece, which "
    "the paper gives to BERT's masked LM. Pass a BertForMaskedLM checkpoint "
    "(mlm=... / --mlm) for the paper's algorithm.")


class SentenceCandidates(NamedTuple):
    """The words of one sentence and the candidates of its eligible words.

    `options[i]` lists the candidates of word i (never empty: a word without
    any keeps itself); `sources[i]` is "mlm" or "glove".
    """

    words: list
    options: dict
    sources: dict


class AugmentedData(NamedTuple):
    """Augmented examples: `text_a, text_b, labels, counts, source_index`.

    Each example's original comes first, then its variants; `labels` (None
    when none were given) are repeated along; `source_index[j]` is the
    original example of row j; `counts` says what was done (and
    `counts["cache_hit"]` whether it came from the disk cache).
    """

    text_a: list
    text_b: list | None
    labels: np.ndarray | None
    counts: dict
    source_index: np.ndarray


def sample_variants(sentence, words, options, num_samples, replace_prob, rng,
                    keep_unchanged=True):
    """The original sentence, then its distinct variants (official draws).

    Each draw picks a random candidate for every eligible word (in word
    order) and uses it with probability `replace_prob`; variants are the
    words joined by spaces.
    """
    out, seen = [sentence], {sentence}
    unchanged = " ".join(words)
    for _ in range(num_samples):
        new = list(words)
        for index, candidates in options.items():
            candidate = rng.choice(candidates)
            if rng.random() < replace_prob:
                new[index] = candidate
        text = " ".join(new)
        if text in seen or (text == unchanged and not keep_unchanged):
            continue
        seen.add(text)
        out.append(text)
    return out


class Augmenter:
    """Candidates and draws for TinyBERT data augmentation.

    Args:
        config: an `AugmentConfig` (default: the paper's p=0.4, N=20, K=15).
        mlm: a `BertMaskedLM`, or any checkpoint source accepted by
            `tinybert_tf.checkpoint.load_masked_lm` (HF BertForMaskedLM
            directory, hub id, keras-hub preset); None = no masked LM, GloVe
            for every eligible word (announced once with a warning).
        glove: gensim `KeyedVectors`, a vectors file (see `load_glove`), a
            `GloveNeighbours` (reuses its neighbour cache), or None for the
            offline GloVe 6B 50d package.
        vocabulary: the masked LM's word-pieces (list or vocab.txt path);
            default: the vocab.txt of the checkpoint the MLM was loaded from.
            A vocabulary that is not the masked LM's (the student's, say) is
            rejected.
    """

    def __init__(self, config=None, mlm=None, glove=None, vocabulary=None):
        self.config = config or AugmentConfig()
        if not isinstance(self.config, AugmentConfig):
            raise TypeError(f"config must be an AugmentConfig, got "
                            f"{type(self.config).__name__}.")
        self.mlm = _resolve_mlm(mlm)
        self.glove = _resolve_glove(glove, self.config)
        self.vocabulary = None
        self.masked_lm = None
        if self.mlm is None:
            logger.warning(NO_MLM_MESSAGE)
        else:
            self.vocabulary = _resolve_vocabulary(self.mlm, vocabulary)
            c = self.config
            self.masked_lm = MaskedLMCandidates(
                self.mlm, self.vocabulary, c.top_k, c.mlm_input,
                c.max_seq_length, c.dtype, c.tokens_per_batch,
                c.length_multiple)
        self.splitter = WordSplitter(self.vocabulary, self.config.lowercase)
        self._fingerprint = None

    # ------------------------------------------------------------ candidates

    def candidates(self, sentences):
        """`SentenceCandidates` of each sentence (computed once per distinct one)."""
        unique = list(dict.fromkeys(sentences))
        words = [self.splitter.words(s) for s in unique]
        stop_words = self.config.stop_words
        eligible = [[i for i, w in enumerate(ws) if is_replaceable(w, stop_words)]
                    for ws in words]
        to_mlm, requests, to_glove = self._route(words, eligible)
        predicted = (self.masked_lm(requests, self.config.progress)
                     if requests else [])
        neighbours = self.glove([words[s][i] for s, i in to_glove])
        options = [dict() for _ in unique]
        sources = [dict() for _ in unique]
        for (s, i), found in zip(to_mlm, predicted):
            options[s][i], sources[s][i] = found, "mlm"
        for s, i in to_glove:
            options[s][i], sources[s][i] = neighbours[words[s][i]], "glove"
        table = {}
        for s, sentence in enumerate(unique):
            # Word order, as the official draws go; a word without candidates
            # keeps itself.
            ordered = {i: options[s][i] or [words[s][i]]
                       for i in sorted(options[s])}
            table[sentence] = SentenceCandidates(
                words[s], ordered, {i: sources[s][i] for i in ordered})
        return [table[s] for s in sentences]

    def _route(self, words, eligible):
        """(sentence, word) pairs for the masked LM (with its requests: the
        sentence's word-pieces and the piece to mask) and for GloVe."""
        pairs = [(s, i) for s, idx in enumerate(eligible) for i in idx]
        if self.masked_lm is None:
            return [], [], pairs
        pieces = self.splitter.pieces(words)
        flat = [[p for word in sentence for p in word] for sentence in pieces]
        starts = [np.cumsum([0] + [len(word) for word in sentence])
                  for sentence in pieces]
        to_mlm, requests, to_glove = [], [], []
        for s, i in pairs:
            if len(pieces[s][i]) == 1:
                to_mlm.append((s, i))
                requests.append((flat[s], int(starts[s][i])))
            else:
                to_glove.append((s, i))
        return to_mlm, requests, to_glove

    # ------------------------------------------------------------ dataset

    def augment(self, text_a, text_b=None, labels=None, cache_dir=None):
        """Augments a dataset; see `augment_dataset`."""
        text_a, text_b, labels = _check_dataset(text_a, text_b, labels)
        started = time.perf_counter()
        cache = key = None
        if cache_dir is not None:
            cache = cache_lib.ResultCache(cache_dir)
            key = cache_lib.digest(cache_lib.FORMAT_VERSION, self.fingerprint(),
                                   cache_lib.texts_digest(text_a),
                                   None if text_b is None
                                   else cache_lib.texts_digest(text_b))
            hit = cache.load(key)
            if hit is not None:
                out_a, out_b, source_index, counts = hit
                counts.update(cache_hit=True, cache_path=cache.path(key),
                              seconds=time.perf_counter() - started)
                return AugmentedData(out_a, out_b, _take(labels, source_index),
                                     counts, source_index)
        out_a, out_b, source_index = [], None if text_b is None else [], []
        counts = {}
        size = self.config.examples_per_chunk
        # No bar in a log file (carriage returns): the run's summary line
        # says what was done.
        with tqdm(total=len(text_a), desc="augmenting", unit="example",
                  disable=not (self.config.progress
                               and console.interactive(sys.stderr))) as bar:
            # Chunks bound the memory of the candidate tables; within one,
            # the masked words of all its sentences are batched together.
            for start in range(0, len(text_a), size):
                block = range(start, min(start + size, len(text_a)))
                rows, found = self._augment_block(block, text_a, text_b)
                for example, example_rows in zip(block, rows):
                    out_a.extend(row[0] for row in example_rows)
                    if text_b is not None:
                        out_b.extend(row[1] for row in example_rows)
                    source_index.extend([example] * len(example_rows))
                _add(counts, _candidate_counts(found))
                bar.update(len(block))
        source_index = np.asarray(source_index, np.int64)
        counts = {"examples": len(text_a), "augmented_examples": len(out_a),
                  **counts, "masked_lm": self.mlm is not None,
                  "pairs": text_b is not None}
        if cache is not None:
            cache.save(key, out_a, out_b, source_index, counts)
        counts.update(cache_hit=False,
                      cache_path=None if cache is None else cache.path(key),
                      seconds=time.perf_counter() - started)
        return AugmentedData(out_a, out_b, _take(labels, source_index),
                             counts, source_index)

    def _augment_block(self, block, text_a, text_b):
        """Rows of every example in `block`, and the candidates used."""
        sentences = [text_a[i] for i in block]
        if text_b is not None:
            sentences += [text_b[i] for i in block]
        found = dict(zip(sentences, self.candidates(sentences)))
        rows = []
        for example in block:
            variants = [self._variants(text_a[example], found, example, 0)]
            if text_b is not None:
                variants.append(self._variants(text_b[example], found,
                                               example, 1))
            rows.append(_rows(variants))
        return rows, list(found.values())

    def _variants(self, sentence, found, example, column):
        entry = found[sentence]
        rng = random.Random(f"{self.config.seed}/{example}/{column}")
        return sample_variants(sentence, entry.words, entry.options,
                               self.config.num_samples,
                               self.config.replace_prob, rng,
                               self.config.keep_unchanged)

    def fingerprint(self):
        """Identity of everything that determines the output text."""
        if self._fingerprint is None:
            self._fingerprint = cache_lib.digest(
                self.config.output_fields(), self.glove.fingerprint(),
                None if self.mlm is None
                else cache_lib.model_fingerprint(self.mlm),
                self.vocabulary)
        return self._fingerprint


def augment_dataset(text_a, text_b=None, labels=None, config=None, mlm=None,
                    glove=None, cache_dir=None, vocabulary=None):
    """TinyBERT data augmentation of a dataset.

    Args:
        text_a: list of the (first) texts.
        text_b: list of the second texts of pair tasks, or None.
        labels: array of one label per example (any dtype, any trailing
            shape), or None.
        config: `AugmentConfig`; `AugmentConfig.for_task("sst2")` gives the
            official N of a GLUE task.
        mlm, glove, vocabulary: see `Augmenter`.
        cache_dir: directory of the on-disk result cache (see
            `cache.default_cache_dir()`); None = no disk cache.

    Returns:
        `AugmentedData`, a named tuple `(text_a, text_b, labels, counts,
        source_index)`: each example's original first, then its variants;
        labels repeated; `counts` of what was done; the original example of
        every row.
    """
    return Augmenter(config, mlm, glove, vocabulary).augment(
        text_a, text_b, labels, cache_dir)


# ---------------------------------------------------------------- helpers

def _rows(variants):
    """Pairs: (a, b), then every a-variant with b, then a with every b-variant."""
    if len(variants) == 1:
        return [(v,) for v in variants[0]]
    a, b = variants
    return ([(a[0], b[0])] + [(v, b[0]) for v in a[1:]]
            + [(a[0], v) for v in b[1:]])


def _candidate_counts(entries):
    """What the candidate search did for these (distinct) sentences."""
    sources = [s for entry in entries for s in entry.sources.values()]
    return {
        "distinct_sentences": len(entries),
        "words": sum(len(e.words) for e in entries),
        "candidate_words": len(sources),
        "mlm_words": sources.count("mlm"),
        "glove_words": sources.count("glove"),
        "words_without_candidates": sum(
            e.options[i] == [e.words[i]] for e in entries for i in e.options),
    }


def _add(total, counts):
    for name, value in counts.items():
        total[name] = total.get(name, 0) + value


def _take(labels, source_index):
    return None if labels is None else labels[source_index]


def _check_dataset(text_a, text_b, labels):
    if isinstance(text_a, str):
        raise TypeError("text_a must be a list of texts, got one string.")
    text_a = list(text_a)
    if not text_a:
        raise ValueError("The dataset to augment is empty: text_a has no "
                         "examples.")
    columns = {"text_a": text_a}
    if text_b is not None:
        text_b = list(text_b)
        if len(text_b) != len(text_a):
            raise ValueError(f"text_b has {len(text_b)} texts but text_a has "
                             f"{len(text_a)}.")
        columns["text_b"] = text_b
    for name, texts in columns.items():
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"{name}[{i}] is a {type(text).__name__}, "
                                "not a string.")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim == 0 or len(labels) != len(text_a):
            raise ValueError(f"labels has shape {labels.shape} but text_a has "
                             f"{len(text_a)} examples.")
    return text_a, text_b, labels


def _resolve_mlm(mlm):
    from tinybert_tf.heads import BertMaskedLM
    if mlm is None or isinstance(mlm, BertMaskedLM):
        if mlm is not None and not mlm.weights:
            raise ValueError("The masked LM has no weights yet: load it with "
                             "tinybert_tf.checkpoint.load_masked_lm(source).")
        return mlm
    if isinstance(mlm, (str, os.PathLike)):
        from tinybert_tf import checkpoint
        return checkpoint.load_masked_lm(mlm)
    raise TypeError(f"mlm must be a BertMaskedLM, a checkpoint source or None,"
                    f" got {type(mlm).__name__}.")


def _resolve_glove(glove, config):
    if isinstance(glove, GloveNeighbours):
        wanted = (config.top_k, config.glove_vocab_size)
        if glove.requested != wanted:
            raise ValueError(
                f"GloveNeighbours was built for (top_k, vocab_size) = "
                f"{glove.requested} but the config asks for {wanted}.")
        return glove
    if glove is None or isinstance(glove, (str, os.PathLike)):
        glove = load_glove(glove, limit=config.glove_vocab_size)
    if not isinstance(glove, KeyedVectors):
        raise TypeError(f"glove must be gensim KeyedVectors, a vectors file, "
                        f"GloveNeighbours or None, got {type(glove).__name__}.")
    return GloveNeighbours(glove, config.top_k, config.glove_vocab_size)


def _resolve_vocabulary(mlm, vocabulary):
    from tinybert_tf.checkpoint import read_vocabulary
    own_file = getattr(mlm, "vocab_file", None)
    own = read_vocabulary(own_file) if own_file else None
    if isinstance(vocabulary, (str, os.PathLike)):
        vocabulary = read_vocabulary(os.fspath(vocabulary))
    if vocabulary is None:
        if own is None:
            raise ValueError(
                "The masked LM comes without a vocabulary: pass "
                "vocabulary=<its vocab.txt or list of word-pieces>.")
        return own
    vocabulary = list(vocabulary)
    if len(vocabulary) != mlm.config.vocab_size:
        raise ValueError(
            f"The given vocabulary has {len(vocabulary)} word-pieces but the "
            f"masked LM's vocab_size is {mlm.config.vocab_size}: the masked LM"
            " must be fed with its own vocabulary (leave vocabulary=None to "
            "use the checkpoint's).")
    if own is not None and own != vocabulary:
        first = next(i for i, (x, y) in enumerate(zip(own, vocabulary)) if x != y)
        raise ValueError(
            f"The given vocabulary differs from the masked LM's ({own_file}) "
            f"at word-piece {first}: {vocabulary[first]!r} vs {own[first]!r}. "
            "The masked LM must be fed with its own vocabulary (leave "
            "vocabulary=None to use it).")
    return vocabulary
