"""Checkpoints in and out.

Every source is read into one form, a `Checkpoint`: a `BertConfig`, a dict of
numpy tensors under Hugging Face BERT names, and the path of `vocab.txt`.
Sources: a local Hugging Face directory (config.json + model.safetensors,
sharded or not; pytorch_model.bin when torch is installed), a Hugging Face hub
id (downloaded when online), a keras-hub BERT preset (local directory or
preset name), and the project's own checkpoints.

The project's own format is a Hugging Face BERT directory: `config.json`
(with a `tinybert` section for what HF has no field for), `model.safetensors`
and `vocab.txt`. It therefore also loads in `transformers`.

A pruned model (`BertConfig.heads_kept` / `intermediate_sizes`, see
`tinybert_tf.pruning`) is written at its UNPRUNED shapes, the removed heads
and FFN neurons as zero blocks: `transformers` 5.x has no `pruned_heads`
any more (4.x had it, for heads only) and no version has per-layer FFN
widths, while a zero head (its value and output weights 0) and a zero
neuron (weights and bias 0, GELU(0) = 0) contribute exactly nothing, so
`transformers.BertModel` gives the pruned model's hidden states. Reading
cuts the zero blocks away again (`compact_pruned`), so the model that is
built is the small one; tensors already at the pruned shapes (a
transformers 4.x `pruned_heads` checkpoint) are taken as they are.

Example:
>>> import tempfile
>>> from tinybert_tf import checkpoint
>>> from tinybert_tf.config import BertConfig
>>> from tinybert_tf.heads import BertClassifier
>>> from tinybert_tf.backbone import dummy_inputs
>>> config = BertConfig(vocab_size=8, hidden_size=8, num_layers=1,
...                     num_heads=2, intermediate_size=16)
>>> from tinybert_tf.backbone import BertBackbone
>>> model = BertClassifier(BertBackbone(config), num_labels=2,
...                        label_names=["neg", "pos"])
>>> _ = model(dummy_inputs())
>>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c"]
>>> path = tempfile.mkdtemp() + "/student"
>>> checkpoint.save(model, path, vocab)
>>> loaded = checkpoint.load_classifier(path)
>>> loaded.label_names
['neg', 'pos']
"""

import json
import os
import re
import tempfile

import numpy as np

from tinybert_tf import files
from tinybert_tf.config import BertConfig

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_BIN = "pytorch_model.bin"
VOCAB = "vocab.txt"
CONFIG = "config.json"


class Checkpoint:
    """What a checkpoint source holds, in one form."""

    def __init__(self, config, weights, vocab_file, extras=None, source=""):
        self.config = config
        self.weights = weights
        self.vocab_file = vocab_file
        self.extras = extras or {}
        self.source = source

    def has(self, prefix):
        return any(name.startswith(prefix) for name in self.weights)

    def vocabulary(self):
        return read_vocabulary(self.vocab_file)


def read_vocabulary(vocab_file):
    if vocab_file is None or not os.path.exists(vocab_file):
        raise FileNotFoundError(f"Vocabulary file not found: {vocab_file}.")
    try:
        with open(vocab_file, encoding="utf-8") as f:
            vocab = [line.rstrip("\n") for line in f]
    except UnicodeDecodeError as error:
        raise ValueError(f"Vocabulary file {vocab_file} is not UTF-8 text "
                         f"({error}).") from None
    while vocab and not vocab[-1]:
        vocab.pop()
    if not vocab:
        raise ValueError(f"Vocabulary file {vocab_file} is empty.")
    return vocab


# ---------------------------------------------------------------- reading

def read(source):
    """Reads any supported checkpoint source into a `Checkpoint`."""
    source = os.fspath(source)
    if os.path.isdir(source):
        if _is_keras_hub_preset(source):
            return _read_keras_hub(source)
        return _read_hf_directory(source)
    if source.startswith("kaggle://") or _is_keras_hub_preset_name(source):
        return _read_keras_hub(source)
    if os.path.exists(source):
        raise ValueError(f"Checkpoint source {source!r} is a file; expected a "
                         "directory with config.json and model.safetensors.")
    # A hub id is "name" or "owner/name"; anything else was meant as a path.
    if (os.path.isabs(source) or source.startswith((".", "~"))
            or source.count("/") > 1):
        raise FileNotFoundError(f"Checkpoint directory {source!r} does not "
                                "exist.")
    return _read_hf_directory(_download_from_hub(source.removeprefix("hf://")))


def _read_hf_directory(directory):
    config_path = os.path.join(directory, CONFIG)
    if not os.path.exists(config_path):
        raise FileNotFoundError(
            f"{config_path} not found: a checkpoint directory needs "
            f"{CONFIG}, {SAFETENSORS} and {VOCAB}.")
    raw = files.read_json(config_path)
    if not isinstance(raw, dict):
        raise ValueError(f"{config_path} is not a model config: it holds a "
                         f"JSON {type(raw).__name__}, not an object.")
    if raw.get("model_type", "bert") != "bert":
        raise ValueError(f"{config_path}: model_type {raw['model_type']!r} is "
                         "not a BERT model.")
    try:
        config = BertConfig.from_dict(raw)
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"{config_path} is not a valid BERT config "
                         f"({type(error).__name__}: {error}).") from None
    vocab_file = os.path.join(directory, VOCAB)
    return Checkpoint(config, compact_pruned(_read_weights(directory), config),
                      vocab_file if os.path.exists(vocab_file) else None,
                      _extras(raw), source=directory)


def _extras(raw):
    """The `tinybert` section of a config.json; for a Hugging Face
    classifier without one, its label names (`id2label`, unless the
    default LABEL_0, LABEL_1, ...)."""
    extras = dict(raw.get("tinybert", {}))
    id2label = raw.get("id2label")
    if "label_names" not in extras and id2label:
        names = [id2label[key] for key in sorted(id2label, key=int)]
        if names != [f"LABEL_{i}" for i in range(len(names))]:
            extras["label_names"] = names
    return extras


def _load_safetensors(path):
    """The tensors of one .safetensors file; ValueError naming the file if
    it is truncated or corrupt (safetensors' own error does not)."""
    from safetensors.numpy import load_file
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Weights file {path} not found.")
    try:
        return load_file(path)
    except OSError:
        raise
    except Exception as error:  # noqa: BLE001 - SafetensorError, a bad header
        raise ValueError(f"{path} is not a readable safetensors file "
                         f"(truncated or corrupt? {type(error).__name__}: "
                         f"{error}).") from None


def _read_weights(directory):
    single = os.path.join(directory, SAFETENSORS)
    if os.path.exists(single):
        return _load_safetensors(single)
    index = os.path.join(directory, SAFETENSORS_INDEX)
    if os.path.exists(index):
        try:
            shards = sorted(set(files.read_json(index)["weight_map"].values()))
        except (KeyError, TypeError, AttributeError):
            raise ValueError(f"{index} has no \"weight_map\" of tensor names "
                             "to shard files.") from None
        weights = {}
        for shard in shards:
            weights.update(_load_safetensors(os.path.join(directory, shard)))
        return weights
    torch_bin = os.path.join(directory, TORCH_BIN)
    if os.path.exists(torch_bin):
        try:
            import torch
        except ImportError:
            raise ImportError(
                f"{torch_bin} is a PyTorch pickle and torch is not installed. "
                "Install torch, or convert the checkpoint to model.safetensors "
                "(transformers: model.save_pretrained(dir, "
                "safe_serialization=True)).") from None
        state = torch.load(torch_bin, map_location="cpu", weights_only=True)
        return {k: v.float().numpy() for k, v in state.items()}
    raise FileNotFoundError(f"No weights in {directory}: expected {SAFETENSORS}"
                            f", {SAFETENSORS_INDEX} or {TORCH_BIN}.")


def _download_from_hub(repo_id):
    try:
        from huggingface_hub import snapshot_download
        return snapshot_download(repo_id, allow_patterns=[
            CONFIG, VOCAB, "*.safetensors", SAFETENSORS_INDEX])
    except Exception as error:
        raise OSError(
            f"Could not get checkpoint {repo_id!r}: it is not a local directory"
            f" and downloading it from the Hugging Face Hub failed ({error}). "
            "Pass a local directory holding config.json, model.safetensors and"
            " vocab.txt, or connect to the internet.") from error


def _is_keras_hub_preset(directory):
    meta = os.path.join(directory, "metadata.json")
    return os.path.exists(meta) and os.path.exists(
        os.path.join(directory, "model.weights.h5"))


def _is_keras_hub_preset_name(name):
    import keras_hub
    return name in keras_hub.models.BertBackbone.presets


def _read_keras_hub(preset):
    import keras_hub
    try:
        backbone = keras_hub.models.BertBackbone.from_preset(preset)
        tokenizer = keras_hub.models.BertTokenizer.from_preset(preset)
    except Exception as error:
        raise OSError(f"Could not load keras-hub preset {preset!r} ({error}). "
                      "Offline, pass a local preset directory.") from error
    weights = _keras_hub_backbone_weights(backbone)
    if _keras_hub_has_masked_lm(preset):
        masked_lm = keras_hub.models.BertMaskedLM.from_preset(
            preset, preprocessor=None)
        weights.update(_keras_hub_mlm_weights(masked_lm))
    # keras-hub's BERT always runs the tanh-approximate GELU ("gelu_new").
    config = BertConfig(
        hidden_act="gelu_new",
        vocab_size=backbone.vocabulary_size, hidden_size=backbone.hidden_dim,
        num_layers=backbone.num_layers, num_heads=backbone.num_heads,
        intermediate_size=backbone.intermediate_dim,
        max_position_embeddings=backbone.max_sequence_length,
        type_vocab_size=backbone.num_segments)
    vocab_dir = tempfile.mkdtemp(prefix="tinybert_vocab_")
    vocab_file = os.path.join(vocab_dir, VOCAB)
    with open(vocab_file, "w", encoding="utf-8") as f:
        f.write("\n".join(tokenizer.get_vocabulary()) + "\n")
    return Checkpoint(config, weights, vocab_file, source=preset)


def _keras_hub_has_masked_lm(preset):
    """Whether the preset saved a BertMaskedLM task with its weights.

    keras-hub's `BertMaskedLM.from_preset` succeeds on any BERT preset: without
    a saved task it gives the head fresh random weights, which must not be
    taken for a pre-trained one.
    """
    import keras_hub
    if not os.path.isdir(preset):
        return preset in keras_hub.models.BertMaskedLM.presets
    task_config = os.path.join(preset, "task.json")
    if not os.path.exists(os.path.join(preset, "task.weights.h5")):
        return False
    try:
        with open(task_config, encoding="utf-8") as f:
            task = json.load(f)
    except (OSError, ValueError):
        return False
    return task.get("class_name") == "BertMaskedLM"


def _keras_hub_backbone_weights(backbone):
    """keras-hub BertBackbone variables -> HF-named [out, in] tensors."""
    get = {w.path: np.asarray(w.numpy()) for w in backbone.weights}
    hidden = backbone.hidden_dim
    out = {
        "embeddings.word_embeddings.weight": get["token_embedding/embeddings"],
        "embeddings.position_embeddings.weight":
            get["position_embedding/embeddings"],
        "embeddings.token_type_embeddings.weight":
            get["segment_embedding/embeddings"],
        "embeddings.LayerNorm.weight": get["embeddings_layer_norm/gamma"],
        "embeddings.LayerNorm.bias": get["embeddings_layer_norm/beta"],
        "pooler.dense.weight": get["pooled_dense/kernel"].T,
        "pooler.dense.bias": get["pooled_dense/bias"],
    }
    for i in range(backbone.num_layers):
        src, dst = f"transformer_layer_{i}/", f"encoder.layer.{i}."
        attn = src + "self_attention_layer/"
        for name in ("query", "key", "value"):
            out[f"{dst}attention.self.{name}.weight"] = (
                get[f"{attn}{name}/kernel"].reshape(hidden, hidden).T)
            out[f"{dst}attention.self.{name}.bias"] = (
                get[f"{attn}{name}/bias"].reshape(hidden))
        out[dst + "attention.output.dense.weight"] = (
            get[attn + "attention_output/kernel"].reshape(hidden, hidden).T)
        out[dst + "attention.output.dense.bias"] = (
            get[attn + "attention_output/bias"])
        for hf, kh in (("attention.output.LayerNorm", "self_attention_layer_norm"),
                       ("output.LayerNorm", "feedforward_layer_norm")):
            out[f"{dst}{hf}.weight"] = get[f"{src}{kh}/gamma"]
            out[f"{dst}{hf}.bias"] = get[f"{src}{kh}/beta"]
        for hf, kh in (("intermediate.dense", "feedforward_intermediate_dense"),
                       ("output.dense", "feedforward_output_dense")):
            out[f"{dst}{hf}.weight"] = get[f"{src}{kh}/kernel"].T
            out[f"{dst}{hf}.bias"] = get[f"{src}{kh}/bias"]
    return out


def _keras_hub_mlm_weights(masked_lm):
    head = masked_lm.masked_lm_head
    # Variable paths below the head's own name, e.g. "intermediate_dense/kernel".
    get = {w.path.removeprefix(head.name + "/"): np.asarray(w.numpy())
           for w in head.weights}
    return {
        "cls.predictions.transform.dense.weight":
            get["intermediate_dense/kernel"].T,
        "cls.predictions.transform.dense.bias": get["intermediate_dense/bias"],
        "cls.predictions.transform.LayerNorm.weight":
            get["intermediate_layer_norm/gamma"],
        "cls.predictions.transform.LayerNorm.bias":
            get["intermediate_layer_norm/beta"],
        "cls.predictions.bias": get["output_bias"],
    }


# ---------------------------------------------------------------- mapping

def _dense(layer, name):
    return {f"{name}.weight": (layer.kernel, True),
            f"{name}.bias": (layer.bias, False)}


def _layer_norm(layer, name):
    return {f"{name}.weight": (layer.gamma, False),
            f"{name}.bias": (layer.beta, False)}


def backbone_variables(backbone, prefix="bert."):
    """HF name -> (variable, transposed?) for a built `BertBackbone`."""
    emb = backbone.embeddings
    names = {
        f"{prefix}embeddings.word_embeddings.weight":
            (emb.word_embeddings.embeddings, False),
        f"{prefix}embeddings.position_embeddings.weight":
            (emb.position_embeddings.embeddings, False),
        f"{prefix}embeddings.token_type_embeddings.weight":
            (emb.token_type_embeddings.embeddings, False),
        **_layer_norm(emb.layer_norm, f"{prefix}embeddings.LayerNorm"),
        **_dense(backbone.pooler, f"{prefix}pooler.dense"),
    }
    for i, layer in enumerate(backbone.transformer_layers):
        p = f"{prefix}encoder.layer.{i}."
        for part in ("query", "key", "value"):
            if layer.num_heads:  # a layer pruned of every head has none
                names.update(_dense(getattr(layer.attention, part),
                                    f"{p}attention.self.{part}"))
        names.update(_dense(layer.attention_output, p + "attention.output.dense"))
        names.update(_layer_norm(layer.attention_layer_norm,
                                 p + "attention.output.LayerNorm"))
        names.update(_dense(layer.intermediate, p + "intermediate.dense"))
        names.update(_dense(layer.output_dense, p + "output.dense"))
        names.update(_layer_norm(layer.output_layer_norm, p + "output.LayerNorm"))
    return names


def model_variables(model):
    """HF name -> (variable, transposed?) for any model of this package."""
    from tinybert_tf.heads import BertClassifier, BertMaskedLM
    names = backbone_variables(getattr(model, "backbone", model))
    if isinstance(model, BertClassifier):
        names.update(_dense(model.classifier, "classifier"))
    if isinstance(model, BertMaskedLM):
        head = model.mlm_head
        names.update(_dense(head.transform, "cls.predictions.transform.dense"))
        names.update(_layer_norm(head.layer_norm,
                                 "cls.predictions.transform.LayerNorm"))
        names["cls.predictions.bias"] = (head.bias, False)
    return names


def copy_weights(source, target, rows=None):
    """Copies every weight of `source` into `target` by name (two models of
    this package; fake-quant ranges are not weights). `rows` maps a name to
    the row indices of the source tensor to copy (vocabulary trimming)."""
    values = model_variables(source)
    for name, (variable, _) in model_variables(target).items():
        value = np.asarray(values[name][0].numpy())
        variable.assign(value[rows[name]] if rows and name in rows else value)


def _normalise_names(weights):
    """Adds the `bert.` prefix of BertFor* models where a BertModel lacks it,
    and renames the LayerNorm `gamma`/`beta` of the original checkpoints
    (bert-base-uncased's among them) to `weight`/`bias`, as transformers does."""
    out = {}
    for name, value in weights.items():
        if name.startswith(("embeddings.", "encoder.", "pooler.")):
            name = "bert." + name
        if "LayerNorm." in name:
            name = re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias",
                                                        name))
        out[name] = value
    return out


def assign(model, checkpoint, required_prefixes=("bert.",)):
    """Copies checkpoint tensors into a built model, checking every shape.

    Tensors under `required_prefixes` must all be present; others (the
    classifier of a pre-trained checkpoint, say) keep their initial values.
    Returns the list of model weights that were not in the checkpoint.
    """
    weights = _normalise_names(checkpoint.weights)
    missing = []
    for name, (variable, transposed) in model_variables(model).items():
        if name not in weights:
            if name.startswith(required_prefixes) and not name.endswith(
                    "pooler.dense.weight") and not name.endswith(
                    "pooler.dense.bias"):
                raise ValueError(f"Checkpoint {checkpoint.source} has no tensor "
                                 f"{name!r}, which the model needs.")
            missing.append(name)
            continue
        value = weights[name].T if transposed else weights[name]
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"Checkpoint {checkpoint.source}: tensor {name!r} has shape "
                f"{tuple(weights[name].shape)}, but the config "
                f"({checkpoint.config.num_layers} layers, hidden "
                f"{checkpoint.config.hidden_size}, vocab "
                f"{checkpoint.config.vocab_size}) needs "
                f"{tuple(variable.shape)[::-1 if transposed else 1]}.")
        variable.assign(value.astype(variable.dtype))
    return missing


# ---------------------------------------------------------------- pruning

_LAYER_TENSOR = re.compile(
    r"^(?P<prefix>(?:.*\.)?)encoder\.layer\.(?P<layer>\d+)\.(?P<part>"
    r"attention\.self\.(?:query|key|value)|attention\.output\.dense|"
    r"intermediate\.dense|output\.dense)\.(?P<kind>weight|bias)$")


def _pruned_index(config, layer, part):
    """(axis of the HF tensor that is pruned, kept positions along it in the
    unpruned tensor) of one layer tensor; None if `part` is not pruned."""
    if part.startswith("attention."):
        heads = config.layer_heads(layer)
        if len(heads) == config.num_heads:
            return None
        d = config.head_size
        kept = np.asarray([h * d + j for h in heads for j in range(d)],
                          dtype=np.int64)
        return (1 if part == "attention.output.dense" else 0), kept
    width = config.layer_intermediate_size(layer)
    if width == config.intermediate_size:
        return None
    return (1 if part == "output.dense" else 0), np.arange(width)


def _layer_tensors(weights, config):
    for name, value in weights.items():
        match = _LAYER_TENSOR.match(name)
        if not match or int(match["layer"]) >= config.num_layers:
            continue
        if match["kind"] == "bias" and match["part"].endswith("output.dense"):
            continue  # an output projection's bias keeps its size
        index = _pruned_index(config, int(match["layer"]), match["part"])
        if index is not None:
            axis = 0 if match["kind"] == "bias" else index[0]
            yield name, value, axis, index[1], match["part"]


def compact_pruned(weights, config):
    """HF-named `weights` with the zero blocks of a pruned `config` cut
    away (tensors already at the pruned shapes are kept)."""
    if not config.is_pruned:
        return weights
    out = dict(weights)
    for name, value, axis, kept, part in _layer_tensors(weights, config):
        full = (config.num_heads * config.head_size
                if part.startswith("attention.") else config.intermediate_size)
        if value.shape[axis] == full:
            out[name] = np.take(value, kept, axis=axis)
        elif value.shape[axis] != len(kept):
            raise ValueError(
                f"Tensor {name!r} has shape {tuple(value.shape)}: neither the "
                f"unpruned ({full}) nor the pruned ({len(kept)}) size of its "
                "layer in config.json (heads_kept / intermediate_sizes).")
    return out


def pad_pruned(tensors, config, prefix="bert."):
    """The inverse of `compact_pruned`: HF-named tensors of a pruned model at
    the unpruned shapes, removed heads and neurons as zeros (a layer without
    heads gets zero query/key/value tensors)."""
    if not config.is_pruned:
        return tensors
    out = dict(tensors)
    h, full_heads = config.hidden_size, config.num_heads * config.head_size
    for i in range(config.num_layers):
        if config.layer_num_heads(i):
            continue
        for part in ("query", "key", "value"):
            name = f"{prefix}encoder.layer.{i}.attention.self.{part}"
            out[name + ".weight"] = np.zeros((full_heads, h), np.float32)
            out[name + ".bias"] = np.zeros((full_heads,), np.float32)
    for name, value, axis, kept, part in _layer_tensors(tensors, config):
        if value.shape[axis] != len(kept):
            continue  # a zero tensor made above
        full = (full_heads if part.startswith("attention.")
                else config.intermediate_size)
        shape = list(value.shape)
        shape[axis] = full
        padded = np.zeros(shape, np.float32)
        where = [slice(None)] * value.ndim
        where[axis] = kept
        padded[tuple(where)] = value
        out[name] = padded
    return out


# ---------------------------------------------------------------- building

def _build(model, extra_inputs=None):
    from tinybert_tf.backbone import dummy_inputs
    inputs = dummy_inputs()
    inputs.update(extra_inputs or {})
    model(inputs)
    return model


def load_backbone(source, **config_overrides):
    """A `BertBackbone` with the weights of `source` (any supported source)."""
    from tinybert_tf.backbone import BertBackbone
    ckpt = source if isinstance(source, Checkpoint) else read(source)
    model = _build(BertBackbone(ckpt.config.replace(**config_overrides)))
    assign(model, ckpt)
    model.vocab_file = ckpt.vocab_file
    return model


def load_classifier(source, num_labels=None, label_names=None, head=None,
                    pooling=None, **config_overrides):
    """A `BertClassifier` from `source`.

    From a fine-tuned checkpoint (one with `classifier.*` tensors) the head is
    loaded; from a pre-trained one a new head with `num_labels` is created.
    """
    from tinybert_tf.backbone import BertBackbone
    from tinybert_tf.heads import BertClassifier
    ckpt = source if isinstance(source, Checkpoint) else read(source)
    extras = ckpt.extras
    has_head = "classifier.weight" in ckpt.weights
    if has_head:
        saved = ckpt.weights["classifier.weight"].shape[0]
        if num_labels is not None and num_labels != saved:
            raise ValueError(f"Checkpoint {ckpt.source} has a {saved}-label "
                             f"classifier but num_labels={num_labels} was asked.")
        num_labels = saved
        label_names = label_names or extras.get("label_names")
    if num_labels is None:
        raise ValueError(f"Checkpoint {ckpt.source} has no classifier head: "
                         "pass num_labels to create one.")
    backbone = BertBackbone(ckpt.config.replace(**config_overrides),
                            name="bert")
    model = BertClassifier(backbone, num_labels,
                           head=head or extras.get("head", "linear"),
                           label_names=label_names,
                           pooling=pooling or extras.get("pooling", "cls"))
    _build(model)
    assign(model, ckpt)
    model.vocab_file = ckpt.vocab_file
    return model


def load_masked_lm(source, **config_overrides):
    """A `BertMaskedLM`; the source must hold `cls.predictions.*` tensors."""
    from keras import ops
    from tinybert_tf.backbone import BertBackbone
    from tinybert_tf.heads import BertMaskedLM
    ckpt = source if isinstance(source, Checkpoint) else read(source)
    if "cls.predictions.bias" not in ckpt.weights:
        raise ValueError(
            f"Checkpoint {ckpt.source} has no masked-LM head (cls.predictions.*"
            " tensors); use a BertForMaskedLM / pre-training checkpoint.")
    model = BertMaskedLM(BertBackbone(ckpt.config.replace(**config_overrides),
                                      name="bert"))
    _build(model, {"mask_positions": ops.zeros((1, 1), "int32")})
    assign(model, ckpt, required_prefixes=("bert.", "cls.predictions."))
    model.vocab_file = ckpt.vocab_file
    return model


# ---------------------------------------------------------------- writing

def save(model, directory, vocabulary, extra_weights=None, extras=None,
         overwrite=False):
    """Writes `model` in the project format (a HF BERT directory).

    `vocabulary` is a list of tokens or the path of a vocab.txt.
    `extra_weights` are more HF-named tensors (the distiller's projections).
    The directory is written next to its destination and renamed into place,
    so an interrupted save never leaves a half-written checkpoint, and an
    existing one is replaced only with `overwrite=True`.
    """
    from safetensors.numpy import save_file
    from tinybert_tf.heads import BertClassifier, BertMaskedLM

    directory = os.path.abspath(os.fspath(directory))
    if os.path.exists(directory) and not overwrite:
        raise FileExistsError(f"{directory} already exists; pass overwrite=True"
                              " (or --overwrite) to replace it.")
    if isinstance(vocabulary, (str, os.PathLike)):
        vocabulary = read_vocabulary(vocabulary)
    config = model.config
    if len(vocabulary) != config.vocab_size:
        raise ValueError(f"Vocabulary has {len(vocabulary)} tokens but the "
                         f"model's vocab_size is {config.vocab_size}.")
    tensors = {}
    for name, (variable, transposed) in model_variables(model).items():
        value = np.asarray(variable.numpy(), dtype=np.float32)
        tensors[name] = np.ascontiguousarray(value.T if transposed else value)
    tensors = pad_pruned(tensors, config)
    for name, value in (extra_weights or {}).items():
        tensors[name] = np.ascontiguousarray(np.asarray(value, np.float32))

    hf_config = config.to_hf_dict()
    tinybert = dict(extras or {})
    if isinstance(model, BertClassifier):
        tinybert.update(num_labels=model.num_labels, head=model.head,
                        pooling=model.pooling, label_names=model.label_names)
        hf_config["architectures"] = ["BertForSequenceClassification"]
        names = model.label_names or [str(i) for i in range(model.num_labels)]
        hf_config["id2label"] = dict(enumerate(names))
        hf_config["label2id"] = {n: i for i, n in enumerate(names)}
        if model.is_regression:
            hf_config["problem_type"] = "regression"
    elif isinstance(model, BertMaskedLM):
        hf_config["architectures"] = ["BertForMaskedLM"]
    hf_config["tinybert"] = tinybert

    with files.staged_directory(directory, prefix=".saving-") as staging:
        save_file(tensors, os.path.join(staging, SAFETENSORS))
        with open(os.path.join(staging, CONFIG), "w", encoding="utf-8") as f:
            json.dump(hf_config, f, indent=2)
        with open(os.path.join(staging, VOCAB), "w", encoding="utf-8") as f:
            f.write("\n".join(vocabulary) + "\n")
