"""`BertConfig`: the one config object for teachers and students.

Example:
>>> from tinybert_tf.config import BertConfig
>>> config = BertConfig.from_preset("tinybert-4l-312d")
>>> config.num_layers, config.hidden_size, config.head_size
(4, 312, 26)
>>> BertConfig.from_json(config.to_json()) == config
True
"""

import dataclasses
import json

# Field names follow Hugging Face's BertConfig where one exists, so that
# `config.json` of a project checkpoint is also a valid HF BERT config.
_HF_NAMES = {
    "num_layers": "num_hidden_layers",
    "num_heads": "num_attention_heads",
    "hidden_dropout": "hidden_dropout_prob",
    "attention_dropout": "attention_probs_dropout_prob",
}


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """Shape and regularisation of a BERT encoder.

    `attention_mask_value` is the additive bias given to padded keys before the
    softmax; -10000 is BERT's (and the official TinyBERT code's) constant.
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_act: str = "gelu"
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    attention_mask_value: float = -10000.0

    def __post_init__(self):
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not divisible by "
                f"num_heads={self.num_heads}."
            )
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads",
                     "intermediate_size", "max_position_embeddings"):
            if getattr(self, name) <= 0:
                raise ValueError(f"BertConfig.{name} must be positive, got "
                                 f"{getattr(self, name)}.")
        if self.hidden_act not in ("gelu", "gelu_new", "relu"):
            raise ValueError(f"Unsupported hidden_act {self.hidden_act!r}; "
                             "expected 'gelu', 'gelu_new' or 'relu'.")

    @property
    def head_size(self):
        return self.hidden_size // self.num_heads

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Builds a config from our own dict or a Hugging Face `config.json`."""
        values = dict(values)
        position_type = values.get("position_embedding_type", "absolute")
        if position_type != "absolute":
            raise ValueError(f"position_embedding_type={position_type!r} is "
                             "not supported; only 'absolute' is.")
        for ours, hf in _HF_NAMES.items():
            if hf in values and ours not in values:
                values[ours] = values.pop(hf)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def to_hf_dict(self):
        """The config as Hugging Face `BertConfig` keys (plus our extras)."""
        values = self.to_dict()
        for ours, hf in _HF_NAMES.items():
            values[hf] = values.pop(ours)
        values.update(model_type="bert", architectures=["BertModel"],
                      pad_token_id=0, position_embedding_type="absolute")
        return values

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_preset(cls, name):
        if name not in PRESETS:
            raise ValueError(f"Unknown model preset {name!r}. Known presets: "
                             f"{', '.join(sorted(PRESETS))}.")
        return PRESETS[name]

    def num_parameters(self, with_pooler=True):
        """Parameter count of the encoder (embeddings + layers + pooler)."""
        h, f = self.hidden_size, self.intermediate_size
        embeddings = (self.vocab_size + self.max_position_embeddings
                      + self.type_vocab_size) * h + 2 * h
        layer = 4 * (h * h + h) + 2 * h * f + f + h + 4 * h
        pooler = h * h + h if with_pooler else 0
        return embeddings + self.num_layers * layer + pooler


PRESETS = {
    "bert-base-uncased": BertConfig(),
    "bert-large-uncased": BertConfig(hidden_size=1024, num_layers=24,
                                     num_heads=16, intermediate_size=4096),
    # The offline teacher (all-MiniLM-L6-v2, REFERENCE.md §2).
    "minilm-l6-h384": BertConfig(hidden_size=384, num_layers=6, num_heads=12,
                                 intermediate_size=1536),
    "tinybert-4l-312d": BertConfig(hidden_size=312, num_layers=4,
                                   num_heads=12, intermediate_size=1200),
    "tinybert-6l-768d": BertConfig(hidden_size=768, num_layers=6,
                                   num_heads=12, intermediate_size=3072),
    # The embedded default student: 12 heads, 3 layers (maps uniformly onto
    # the 6-layer MiniLM teacher, k=2), under a third of its parameters.
    "tinybert-3l-192d": BertConfig(hidden_size=192, num_layers=3,
                                   num_heads=12, intermediate_size=768),
}
