import bz2
import gzip
import random

import numpy as np
import pytest

from tinybert_tf import assets
from tinybert_tf.corpus import (build_cache, cache_info, make_dataset,
                                pack_document, read_documents)
from tinybert_tf.tokenizer import BertTextTokenizer
from tests.tiny import VOCAB, tiny_corpus


@pytest.fixture(scope="module")
def tokenizer():
    return BertTextTokenizer(VOCAB, sequence_length=32)


def test_pack_document_keeps_order_and_fits():
    sentences = [[10 + i] * n for i, n in enumerate([5, 7, 4, 9, 3, 6, 8])]
    pairs = pack_document(sentences, 32, random.Random(0), short_seq_prob=0)
    flat = [p for a, b in pairs for p in a + b]
    assert flat == [p for s in sentences for p in s]  # nothing lost, in order
    for a, b in pairs:
        assert a and b and len(a) + len(b) <= 29


def test_pack_document_truncates_long_sentences():
    pairs = pack_document([list(range(100)), list(range(50))], 32,
                          random.Random(0), short_seq_prob=0)
    assert all(len(a) + len(b) <= 29 for a, b in pairs)


@pytest.mark.parametrize("suffix,opener", [("", open), (".gz", gzip.open),
                                           (".bz2", bz2.open)])
def test_read_documents_formats(tmp_path, suffix, opener):
    path = str(tmp_path / f"c.txt{suffix}")
    with opener(path, "wt") as f:
        f.write("first line one.\nfirst line two.\n\nsecond doc.\n")
    assert list(read_documents(path)) == ["first line one. first line two.",
                                          "second doc."]
    assert len(list(read_documents(path, "line"))) == 3


def test_read_documents_wikipedia_dump():
    docs = []
    for doc in read_documents(assets.gensim_text_files()[0]):
        docs.append(doc)
        if len(docs) == 3:
            break
    assert all(len(d.split()) > 20 and "[[" not in d for d in docs)


def test_missing_and_empty_corpus(tmp_path, tokenizer):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        list(read_documents(str(tmp_path / "nope.txt")))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="no sequence"):
        build_cache([str(empty)], tokenizer, cache_dir=str(tmp_path / "c"))
    assert not list((tmp_path / "c").iterdir())  # no half-written cache left


def test_cache_is_reused_and_keyed(tmp_path, tokenizer):
    corpus = tiny_corpus(str(tmp_path / "corpus.txt"))
    messages = []
    first = build_cache([corpus], tokenizer, cache_dir=str(tmp_path), log=messages.append)
    again = build_cache([corpus], tokenizer, cache_dir=str(tmp_path), log=messages.append)
    assert first == again and messages[-1].startswith("Reusing")
    longer = BertTextTokenizer(VOCAB, sequence_length=48)
    assert build_cache([corpus], longer, cache_dir=str(tmp_path)) != first
    info = cache_info(first)
    assert info["documents"] == 12 and info["sequences"] > 0


def test_dataset_batches(tmp_path, tokenizer):
    cache = build_cache([tiny_corpus(str(tmp_path / "c.txt"))], tokenizer,
                        cache_dir=str(tmp_path))
    batch = next(iter(make_dataset(cache, batch_size=2)))
    ids = batch["token_ids"].numpy()
    assert ids.shape == (2, 32)
    assert (ids[:, 0] == tokenizer.cls_id).all()
    np.testing.assert_array_equal(batch["padding_mask"].numpy(), ids != 0)
    segments = batch["segment_ids"].numpy()
    assert segments.max() == 1 and ((segments == 1) <= (ids != 0)).all()
    assert make_dataset(cache, batch_size=2).options().autotune.enabled is False
