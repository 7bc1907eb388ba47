"""On-disk cache of augmented datasets, keyed by what determines them.

The key is a SHA-256 of the input texts, the output-relevant config fields,
the masked LM's weights and vocabulary and the GloVe vectors in use, and a
format version. A hit is a Parquet file read back in seconds.

Default directory: $TINYBERT_TF_CACHE/augment, else ~/.cache/tinybert_tf/augment.

Example:
>>> import tempfile
>>> from tinybert_tf.augment.cache import ResultCache, digest
>>> cache = ResultCache(tempfile.mkdtemp())
>>> key = digest("texts", {"seed": 0})
>>> cache.load(key) is None
True
>>> cache.save(key, ["a", "a b"], None, [0, 0], {"examples": 1})
>>> cache.load(key)[0]
['a', 'a b']
"""

import hashlib
import json
import os
import tempfile

import numpy as np

FORMAT_VERSION = "tinybert_tf.augment/1"


def default_cache_dir():
    from tinybert_tf import assets
    return assets.cache_dir("augment")


def digest(*parts):
    """SHA-256 hex of strings, bytes, numpy arrays and JSON-able values."""
    sha = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            sha.update(str((part.dtype.str, part.shape)).encode())
            sha.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, bytes):
            sha.update(part)
        elif isinstance(part, str):
            sha.update(part.encode("utf-8"))
        else:
            sha.update(json.dumps(part, sort_keys=True, default=str).encode())
        sha.update(b"\x1f")
    return sha.hexdigest()


def texts_digest(texts):
    return digest("\x1e".join(texts), len(texts))


def model_fingerprint(model):
    """Hash of a Keras model's config and every weight."""
    sha = hashlib.sha256(json.dumps(model.config.to_dict(),
                                    sort_keys=True).encode())
    for weight in model.weights:
        sha.update(weight.path.encode())
        sha.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return sha.hexdigest()


class ResultCache:
    """Parquet files <directory>/<key>.parquet: text_a, text_b, source_index."""

    def __init__(self, directory):
        self.directory = os.path.abspath(os.path.expanduser(
            os.fspath(directory)))

    def path(self, key):
        return os.path.join(self.directory, f"{key}.parquet")

    def load(self, key):
        """(text_a, text_b or None, source_index, counts), or None on a miss."""
        import pyarrow.parquet as pq
        path = self.path(key)
        if not os.path.exists(path):
            return None
        table = pq.read_table(path)
        counts = json.loads(table.schema.metadata[b"counts"])
        text_b = (table.column("text_b").to_pylist()
                  if "text_b" in table.column_names else None)
        return (table.column("text_a").to_pylist(), text_b,
                table.column("source_index").to_numpy(), counts)

    def save(self, key, text_a, text_b, source_index, counts):
        import pyarrow as pa
        import pyarrow.parquet as pq
        columns = {"text_a": pa.array(text_a, pa.string())}
        if text_b is not None:
            columns["text_b"] = pa.array(text_b, pa.string())
        columns["source_index"] = pa.array(np.asarray(source_index, np.int64))
        table = pa.table(columns).replace_schema_metadata(
            {"counts": json.dumps(counts)})
        os.makedirs(self.directory, exist_ok=True)
        # Written next to its destination, then renamed: a crash never
        # leaves a truncated file under the key.
        handle, staging = tempfile.mkstemp(suffix=".tmp", dir=self.directory)
        os.close(handle)
        try:
            pq.write_table(table, staging)
            os.replace(staging, self.path(key))
        except BaseException:
            if os.path.exists(staging):
                os.remove(staging)
            raise
