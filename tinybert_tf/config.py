"""`BertConfig`: the one config object for teachers and students.

Example:
>>> from tinybert_tf.config import BertConfig
>>> config = BertConfig.from_preset("tinybert-4l-312d")
>>> config.num_layers, config.hidden_size, config.head_size
(4, 312, 26)
>>> BertConfig.from_json(config.to_json()) == config
True

A pruned config (`tinybert_tf.pruning`) keeps, per layer, the original
indices of its remaining heads and its FFN width:
>>> pruned = config.replace(heads_kept=((0, 5), (), (1, 2, 3), tuple(range(12))),
...                         intermediate_sizes=(600, 1200, 300, 1200))
>>> pruned.layer_num_heads(1), pruned.layer_intermediate_size(2)
(0, 300)
>>> pruned.pruned_heads()[0][:3]
[1, 2, 3]
>>> BertConfig.from_json(pruned.to_json()) == pruned
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
    # Structured pruning (None: every layer has `num_heads` heads of
    # `head_size` and `intermediate_size` FFN neurons; an unpruned config
    # serialises without these keys). `heads_kept[i]`: the ORIGINAL indices
    # (0 .. num_heads-1, ascending) of the heads layer i keeps, possibly
    # none; they pair each remaining head with the teacher head it was
    # distilled from. `intermediate_sizes[i]`: layer i's FFN width.
    heads_kept: tuple | None = None
    intermediate_sizes: tuple | None = None

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
        self._check_pruning()

    def _check_pruning(self):
        """Validates and canonicalises `heads_kept` / `intermediate_sizes`
        (tuples; None when nothing is pruned)."""
        heads, sizes = self.heads_kept, self.intermediate_sizes
        if heads is not None:
            heads = tuple(tuple(int(h) for h in layer) for layer in heads)
            if len(heads) != self.num_layers:
                raise ValueError(f"BertConfig.heads_kept has {len(heads)} "
                                 f"layers; num_layers is {self.num_layers}.")
            for i, layer in enumerate(heads):
                if (list(layer) != sorted(set(layer)) or
                        any(not 0 <= h < self.num_heads for h in layer)):
                    raise ValueError(
                        f"BertConfig.heads_kept[{i}] = {list(layer)}: expected"
                        " ascending distinct head indices in [0, "
                        f"{self.num_heads}).")
            if all(len(layer) == self.num_heads for layer in heads):
                heads = None
        if sizes is not None:
            sizes = tuple(int(f) for f in sizes)
            if len(sizes) != self.num_layers:
                raise ValueError(f"BertConfig.intermediate_sizes has "
                                 f"{len(sizes)} layers; num_layers is "
                                 f"{self.num_layers}.")
            if any(not 1 <= f <= self.intermediate_size for f in sizes):
                raise ValueError(
                    f"BertConfig.intermediate_sizes = {list(sizes)}: each "
                    f"must be in [1, intermediate_size={self.intermediate_size}].")
            if all(f == self.intermediate_size for f in sizes):
                sizes = None
        object.__setattr__(self, "heads_kept", heads)
        object.__setattr__(self, "intermediate_sizes", sizes)

    @property
    def head_size(self):
        return self.hidden_size // self.num_heads

    @property
    def is_pruned(self):
        return self.heads_kept is not None or self.intermediate_sizes is not None

    def layer_heads(self, layer):
        """Original indices of the heads layer `layer` (0-based) keeps."""
        if self.heads_kept is None:
            return tuple(range(self.num_heads))
        return self.heads_kept[layer]

    def layer_num_heads(self, layer):
        return len(self.layer_heads(layer))

    def layer_intermediate_size(self, layer):
        if self.intermediate_sizes is None:
            return self.intermediate_size
        return self.intermediate_sizes[layer]

    def pruned_heads(self):
        """{layer: [removed original head indices]}, as Hugging Face's
        `BertConfig.pruned_heads` (layers that lost none are left out)."""
        out = {}
        for i in range(self.num_layers):
            removed = sorted(set(range(self.num_heads)) - set(self.layer_heads(i)))
            if removed:
                out[i] = removed
        return out

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        values = dataclasses.asdict(self)
        for name in ("heads_kept", "intermediate_sizes"):
            if values[name] is None:
                del values[name]  # an unpruned config serialises as before
            else:
                values[name] = json.loads(json.dumps(values[name]))
        return values

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
        pruned = values.pop("pruned_heads", None)
        if pruned and "heads_kept" not in values:
            # A Hugging Face (transformers 4.x) pruned BERT: its tensors
            # hold the remaining heads only, in their original order.
            heads = values.get("num_heads", 12)
            layers = values.get("num_layers", 12)
            pruned = {int(k): set(v) for k, v in pruned.items()}
            values["heads_kept"] = [
                [h for h in range(heads) if h not in pruned.get(i, ())]
                for i in range(layers)]
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

    def layer_parameters(self, layer):
        """Parameters of Transformer layer `layer` (per-layer sizes)."""
        h = self.hidden_size
        a = self.layer_num_heads(layer) * self.head_size
        f = self.layer_intermediate_size(layer)
        attention = 3 * (h * a + a) + a * h + h
        return attention + 2 * h * f + f + h + 4 * h

    def num_parameters(self, with_pooler=True):
        """Parameter count of the encoder (embeddings + layers + pooler)."""
        h = self.hidden_size
        embeddings = (self.vocab_size + self.max_position_embeddings
                      + self.type_vocab_size) * h + 2 * h
        pooler = h * h + h if with_pooler else 0
        return embeddings + self.non_embedding_parameters() + pooler

    def non_embedding_parameters(self):
        """Parameters of the Transformer layers (no embeddings, no pooler)."""
        return sum(self.layer_parameters(i) for i in range(self.num_layers))


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
