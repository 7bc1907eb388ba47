"""Plain-text corpora -> packed BERT pre-training sequences, cached on disk.

Documents are read one at a time (plain text, .gz/.bz2, one document per line
or blank-line separated; Wikipedia XML dumps; TFDS text datasets), split into
sentences, tokenized, and packed as BERT's create_pretraining_data does: a
document's consecutive sentences fill a sequence of `sequence_length` tokens,
split at a random sentence boundary into segment A and segment B. (No [MASK]
and no random next sentence: TinyBERT's general distillation uses neither.)

The packed sequences are written once to TFRecord shards under a cache
directory keyed by the corpus, the vocabulary and the packing parameters, so
re-runs reuse them and corpora larger than memory stream from disk.

Example:
>>> import tempfile
>>> from tinybert_tf import assets
>>> from tinybert_tf.corpus import build_cache, make_dataset
>>> from tinybert_tf.tokenizer import BertTextTokenizer
>>> tokenizer = BertTextTokenizer(assets.minilm_dir() + "/vocab.txt", 128)
>>> cache = build_cache([assets.gensim_text_files()[1]], tokenizer,
...                     cache_dir=tempfile.mkdtemp(), max_documents=20)
Tokenized 20 documents into 48 sequences of 128 (...)
>>> batch = next(iter(make_dataset(cache, batch_size=4)))
>>> tuple(batch["token_ids"].shape)
(4, 128)
"""

import bz2
import gzip
import hashlib
import json
import os
import random
import re
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from tinybert_tf import files, training
from tinybert_tf.assets import BBC_NEWS_TRAIN

CACHE_VERSION = 1
# A text file with more lines that are not UTF-8 than this fraction is
# refused (a binary file given as a corpus); fewer are skipped and counted.
MAX_UNDECODABLE = 0.5
# Lines read before a mostly undecodable file is refused (and at its end).
_CHECK_AFTER = 1000
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(text):
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


# ---------------------------------------------------------------- reading

def _open_text(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    if path.endswith(".bz2"):
        return bz2.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _open_binary(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    if path.endswith(".bz2"):
        return bz2.open(path, "rb")
    return open(path, "rb")


class _Lines:
    """The UTF-8 lines of a text file (.gz/.bz2 too); a line that is not
    UTF-8 is skipped and counted, and a file mostly of such lines refused."""

    def __init__(self, path, log=print):
        self.path, self.log = path, log
        self.lines = self.skipped = self.skipped_bytes = 0

    def __iter__(self):
        try:
            with _open_binary(self.path) as f:
                for raw in f:
                    if not raw.strip():
                        yield ""
                        continue
                    self.lines += 1
                    if self.lines == _CHECK_AFTER:
                        self._check()
                    try:
                        yield raw.decode("utf-8")
                    except UnicodeDecodeError:
                        self.skipped += 1
                        self.skipped_bytes += len(raw)
        except EOFError as error:  # a truncated .gz / .bz2
            raise ValueError(f"Corpus file {self.path} is truncated "
                             f"({error}).") from None
        self._check()
        if self.skipped:
            self.log(f"{self.path}: skipped {self.skipped} of {self.lines} "
                     f"lines that are not UTF-8 text ({self.skipped_bytes} "
                     "bytes).")

    def _check(self):
        if self.lines and self.skipped / self.lines > MAX_UNDECODABLE:
            raise ValueError(
                f"Corpus file {self.path}: {self.skipped} of the first "
                f"{self.lines} lines are not UTF-8 text; is it a binary file?"
                " A corpus is plain UTF-8 text (.txt, .gz, .bz2) or a "
                "Wikipedia .xml.bz2 dump.")


def _is_wikipedia_dump(path):
    return ".xml" in os.path.basename(path)


def _wikipedia_documents(path):
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki
    opener = bz2.open if path.endswith(".bz2") else open
    with opener(path, "rb") as f:
        for _title, text, _page_id in extract_pages(f):
            text = filter_wiki(text)
            if text.lstrip().upper().startswith("#REDIRECT"):
                continue
            text = re.sub(r"'{2,}", "", text)
            lines = [re.sub(r"\s+", " ", line).strip()
                     for line in text.split("\n")]
            prose = [line for line in lines if len(line.split()) >= 8
                     and not line.startswith(("*", "|", "=", "{", "!"))]
            if prose:
                yield " ".join(prose)


def _text_documents(path, doc_format, log=print):
    if doc_format == "auto":
        try:
            with _open_text(path) as f:
                head = f.read(1 << 20)
        except EOFError as error:
            raise ValueError(f"Corpus file {path} is truncated ({error})."
                             ) from None
        doc_format = "blank" if re.search(r"\n[ \t]*\n", head) else "line"
    lines = _Lines(path, log)
    if doc_format == "line":
        for line in lines:
            if line.strip():
                yield line.strip()
        return
    paragraph = []
    for line in lines:
        if line.strip():
            paragraph.append(line.strip())
        elif paragraph:
            yield " ".join(paragraph)
            paragraph = []
    if paragraph:
        yield " ".join(paragraph)


def read_documents(path, doc_format="auto", log=print):
    """Yields the documents of one corpus file, one string each.

    `doc_format`: "line" (one document per line), "blank" (documents
    separated by blank lines) or "auto" (blank if the file has blank lines).
    Wikipedia XML dumps (`*.xml`, `*.xml.bz2`) are recognised by name.
    Lines that are not UTF-8 are skipped, and `log` told how many; a file
    where they are more than half (`MAX_UNDECODABLE`) raises ValueError.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"Corpus file not found: {path}.")
    if doc_format not in ("auto", "line", "blank"):
        raise ValueError(f"doc_format must be auto, line or blank, got "
                         f"{doc_format!r}.")
    if _is_wikipedia_dump(path):
        return _wikipedia_documents(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"Corpus path {path} is a folder; pass its "
                                "text files.")
    return _text_documents(path, doc_format, log)


def bbc_news_train_documents():
    """Yields the BBC News train-split articles (`tasks.load_bbc_news`)."""
    from tinybert_tf.tasks import load_bbc_news
    yield from load_bbc_news().train.text_a


def _documents(source, doc_format, log):
    if source == BBC_NEWS_TRAIN:
        return bbc_news_train_documents()
    if source.startswith("tfds:"):
        return tfds_documents(source[5:])
    return read_documents(source, doc_format, log)


def tfds_documents(name, split="train", text_key="text", data_dir=None):
    """Yields the documents of a TFDS text dataset (e.g. "wikipedia/20230601.en")."""
    import tensorflow_datasets as tfds
    dataset = tfds.load(name, split=split, data_dir=data_dir)
    for example in tfds.as_numpy(dataset):
        if text_key not in example:
            raise ValueError(f"TFDS dataset {name!r} has no feature {text_key!r}; "
                             f"it has {sorted(example)}.")
        yield example[text_key].decode("utf-8")


# ---------------------------------------------------------------- packing

def pack_document(sentences, sequence_length, rng, short_seq_prob=0.1):
    """Word-piece id lists of one document's sentences -> (A, B) pairs.

    Like BERT's create_instances_from_document without the random next
    sentence: consecutive sentences fill up to `sequence_length - 3` pieces
    (a shorter random target with probability `short_seq_prob`), cut at a
    random sentence boundary. A chunk is closed before a sentence would
    overflow it, so only a single sentence longer than the window is cut.
    """
    max_pieces = sequence_length - 3

    def new_target():
        return (rng.randint(2, max_pieces) if rng.random() < short_seq_prob
                else max_pieces)

    def to_pair(chunk):
        if len(chunk) >= 2:
            cut = rng.randint(1, len(chunk) - 1)
            a = [p for s in chunk[:cut] for p in s]
            b = [p for s in chunk[cut:] for p in s]
        else:
            a, b = chunk[0][:len(chunk[0]) // 2], chunk[0][len(chunk[0]) // 2:]
        while len(a) + len(b) > max_pieces:  # BERT's truncate_seq_pair
            longer = a if len(a) > len(b) else b
            longer.pop(0 if rng.random() < 0.5 else -1)
        return a, b

    pairs, chunk, length, target = [], [], 0, new_target()
    for sentence in (list(s) for s in sentences if len(s)):
        if chunk and length + len(sentence) > target:
            pairs.append(to_pair(chunk))
            chunk, length, target = [], 0, new_target()
        chunk.append(sentence)
        length += len(sentence)
    if chunk:
        pairs.append(to_pair(chunk))
    return [(a, b) for a, b in pairs if a and b]


def _encode(a, b, tokenizer):
    ids = [tokenizer.cls_id] + a + [tokenizer.sep_id] + b + [tokenizer.sep_id]
    segments = [0] * (len(a) + 2) + [1] * (len(b) + 1)
    pad = tokenizer.sequence_length - len(ids)
    return ids + [tokenizer.pad_id] * pad, segments + [0] * pad


def _serialize(token_ids, segment_ids):
    feature = {
        "token_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=token_ids)),
        "segment_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=segment_ids)),
    }
    return tf.train.Example(features=tf.train.Features(
        feature=feature)).SerializeToString()


# ---------------------------------------------------------------- caching

def _source_identity(source):
    if source == BBC_NEWS_TRAIN:
        from tinybert_tf.tasks import BBC_NEWS_FRACTIONS
        return f"{source}:seed0:{BBC_NEWS_FRACTIONS}"
    if isinstance(source, str) and os.path.exists(source):
        stat = os.stat(source)
        return f"{os.path.abspath(source)}:{stat.st_size}:{int(stat.st_mtime)}"
    return f"tfds:{source}"


def cache_key(sources, tokenizer, short_seq_prob, seed, max_documents):
    digest = hashlib.sha256()
    for part in ([CACHE_VERSION, tokenizer.sequence_length, tokenizer.lowercase,
                  tokenizer.strip_accents, short_seq_prob, seed, max_documents]
                 + [_source_identity(s) for s in sources]
                 + tokenizer.vocabulary):
        digest.update(str(part).encode("utf-8") + b"\0")
    return digest.hexdigest()[:16]


def default_cache_dir():
    from tinybert_tf import assets
    return assets.cache_dir("corpus")


def build_cache(sources, tokenizer, cache_dir=None, doc_format="auto",
                short_seq_prob=0.1, seed=0, max_documents=None,
                documents_per_batch=64, sequences_per_shard=20000,
                log=print):
    """Packs and tokenizes the corpus once; returns the cache directory.

    `sources`: corpus file paths, TFDS names prefixed with "tfds:"
    (`"tfds:wikipedia/20230601.en"`, read with `tfds_documents`), or
    `BBC_NEWS_TRAIN` (`bbc_news_train_documents`).
    An existing cache with the same key is reused as is.
    """
    sources = list(sources)
    if not sources:
        raise ValueError("No corpus given: pass at least one file or TFDS name.")
    key = cache_key(sources, tokenizer, short_seq_prob, seed, max_documents)
    root = cache_dir or default_cache_dir()
    directory = os.path.join(root, key)
    if os.path.exists(os.path.join(directory, "meta.json")):
        log(f"Reusing the tokenized corpus cache {directory}")
        return directory

    os.makedirs(root, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".building-", dir=root)
    files.follow_umask(staging, directory=True)
    rng = random.Random(seed)
    stats = {"documents": 0, "sequences": 0, "tokens": 0, "shards": 0}
    writer = None

    def write(a, b):
        nonlocal writer
        if stats["sequences"] % sequences_per_shard == 0:
            if writer:
                writer.close()
            shard = os.path.join(staging, f"shard-{stats['shards']:05d}.tfrecord")
            writer = tf.io.TFRecordWriter(shard)
            stats["shards"] += 1
        token_ids, segment_ids = _encode(a, b, tokenizer)
        writer.write(_serialize(token_ids, segment_ids))
        stats["sequences"] += 1
        stats["tokens"] += len(a) + len(b) + 3

    def flush(documents):
        sentences = [split_sentences(d) for d in documents]
        flat = [s for doc in sentences for s in doc]
        if not flat:
            return
        pieces = tokenizer.tokenize(tf.constant(flat))
        pieces = pieces.to_list() if hasattr(pieces, "to_list") else pieces
        start = 0
        for doc in sentences:
            doc_pieces = pieces[start:start + len(doc)]
            start += len(doc)
            for a, b in pack_document(doc_pieces, tokenizer.sequence_length,
                                      rng, short_seq_prob):
                write(a, b)

    try:
        batch = []
        for source in sources:
            documents = _documents(source, doc_format, log)
            for document in documents:
                if max_documents and stats["documents"] >= max_documents:
                    break
                batch.append(document)
                stats["documents"] += 1
                if len(batch) == documents_per_batch:
                    flush(batch)
                    batch = []
        flush(batch)
        if writer:
            writer.close()
        if stats["sequences"] == 0:
            raise ValueError(f"The corpus {sources} produced no sequence: is it "
                             "empty, or are all documents a single word?")
        stats.update(sources=[_source_identity(s) for s in sources],
                     sequence_length=tokenizer.sequence_length,
                     padding_fraction=1 - stats["tokens"] / (
                         stats["sequences"] * tokenizer.sequence_length))
        with open(os.path.join(staging, "meta.json"), "w") as f:
            json.dump(stats, f, indent=2)
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log(f"Tokenized {stats['documents']} documents into {stats['sequences']} "
        f"sequences of {tokenizer.sequence_length} ({directory})")
    return directory


def cache_info(cache):
    with open(os.path.join(cache, "meta.json")) as f:
        return json.load(f)


def make_dataset(cache, batch_size, shuffle_buffer=10000, seed=0, repeat=False):
    """tf.data over a cache: dict batches of token_ids/segment_ids/padding_mask."""
    info = cache_info(cache)
    length = info["sequence_length"]
    files = sorted(tf.io.gfile.glob(os.path.join(cache, "shard-*.tfrecord")))
    spec = {"token_ids": tf.io.FixedLenFeature([length], tf.int64),
            "segment_ids": tf.io.FixedLenFeature([length], tf.int64)}

    def parse(record):
        example = tf.io.parse_single_example(record, spec)
        token_ids = tf.cast(example["token_ids"], tf.int32)
        return {"token_ids": token_ids,
                "segment_ids": tf.cast(example["segment_ids"], tf.int32),
                "padding_mask": tf.cast(token_ids != 0, tf.int32)}

    dataset = tf.data.TFRecordDataset(files)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    dataset = dataset.with_options(options)
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed,
                                  reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    return training.without_autotuner(
        dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
