"""`BertConfig`: JSON and Hugging Face round trips, validation, sizes."""

import json

import pytest

from tinybert_tf import assets
from tinybert_tf.backbone import BertBackbone, dummy_inputs
from tinybert_tf.config import PRESETS, BertConfig

TINY = BertConfig(vocab_size=50, hidden_size=16, num_layers=2, num_heads=4,
                  intermediate_size=24, max_position_embeddings=20,
                  type_vocab_size=3)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_json_round_trip(name):
    config = BertConfig.from_preset(name)
    assert BertConfig.from_json(config.to_json()) == config
    assert json.loads(config.to_json())["num_layers"] == config.num_layers


def test_hugging_face_dict_round_trip():
    config = TINY.replace(hidden_act="gelu_new", attention_dropout=0.05)
    hf = config.to_hf_dict()
    assert hf["num_hidden_layers"] == 2 and hf["num_attention_heads"] == 4
    assert hf["attention_probs_dropout_prob"] == 0.05
    assert hf["model_type"] == "bert"
    assert "num_layers" not in hf
    assert BertConfig.from_dict(hf) == config
    assert BertConfig.from_dict(json.loads(json.dumps(hf))) == config


def test_hugging_face_reads_our_config_and_we_read_theirs():
    transformers = pytest.importorskip("transformers")
    hf = transformers.BertConfig(**TINY.to_hf_dict())
    assert (hf.num_hidden_layers, hf.num_attention_heads, hf.hidden_size,
            hf.intermediate_size, hf.type_vocab_size) == (2, 4, 16, 24, 3)
    assert BertConfig.from_dict(hf.to_dict()) == TINY


def test_real_minilm_config_json_is_the_minilm_preset():
    with open(f"{assets.minilm_dir()}/config.json", encoding="utf-8") as f:
        config = BertConfig.from_dict(json.load(f))
    assert config == PRESETS["minilm-l6-h384"]


def test_head_size_and_replace():
    config = BertConfig.from_preset("tinybert-4l-312d")
    assert config.head_size == 26
    assert config.replace(num_layers=2).num_layers == 2
    assert config.num_layers == 4  # frozen: replace returns a copy


@pytest.mark.parametrize("changes, message", [
    ({"hidden_size": 30, "num_heads": 4}, "hidden_size=30 is not divisible"),
    ({"num_layers": 0}, "num_layers must be positive, got 0"),
    ({"vocab_size": -1}, "vocab_size must be positive"),
    ({"hidden_act": "swish"}, "Unsupported hidden_act 'swish'"),
])
def test_invalid_configs_are_rejected(changes, message):
    with pytest.raises(ValueError, match=message):
        TINY.replace(**changes)


def test_unsupported_hugging_face_options_are_rejected():
    with pytest.raises(ValueError, match="'relative_key' is not supported"):
        BertConfig.from_dict({**TINY.to_hf_dict(),
                              "position_embedding_type": "relative_key"})


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="bert-tiny") as error:
        BertConfig.from_preset("bert-tiny")
    for name in PRESETS:
        assert name in str(error.value)


def built_parameter_count(config):
    backbone = BertBackbone(config)
    backbone(dummy_inputs(1, 4))
    return backbone.count_params()


@pytest.mark.parametrize("config", [TINY, PRESETS["tinybert-3l-192d"]],
                         ids=["tiny", "tinybert-3l-192d"])
def test_num_parameters_equals_the_built_model(config):
    pooler = config.hidden_size * config.hidden_size + config.hidden_size
    count = built_parameter_count(config)
    assert config.num_parameters() == count
    assert config.num_parameters(with_pooler=False) == count - pooler


@pytest.mark.parametrize("name", ["bert-base-uncased", "tinybert-4l-312d",
                                  "minilm-l6-h384"])
def test_num_parameters_equals_hugging_face_bert_model(name):
    """HF's BertModel built on torch's meta device (no memory, no weights)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = BertConfig.from_preset(name)
    with torch.device("meta"):
        model = transformers.BertModel(
            transformers.BertConfig(**config.to_hf_dict()))
    assert config.num_parameters() == sum(p.numel() for p in
                                          model.parameters())
    if name == "bert-base-uncased":
        assert config.num_parameters() == 109482240


def test_doctests():
    import doctest
    from tinybert_tf import config
    assert doctest.testmod(config).failed == 0
