"""Every example in a module docstring of the library runs as written.

`>>>` examples (module and function docstrings) run with doctest; the
```python blocks of module docstrings are executed in a folder holding the
files they name (a tiny student under runs/bbc/student, its .tflite files,
train.csv, reviews.csv, a GloVe file) and a namespace with the objects they
take as given (`model`, `vocabulary`, `tokenizer`, `eval_inputs`, ...),
built from tiny models.
"""

import ast
import doctest
import importlib
import os
import re

import numpy as np
import pytest

from tiny import VOCAB, tiny_config

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABELS = ["business", "sport"]
TEXTS = ["the market rose", "the team won the game", "shares fell",
         "a dog ran on the mat", "price of shares rose", "the team lost"]
LENGTH = 128


def _modules():
    found = []
    for package in ("tinybert_tf", "export"):
        for folder, _, names in os.walk(os.path.join(ROOT, package)):
            for name in sorted(names):
                if name.endswith(".py"):
                    parts = os.path.relpath(os.path.join(folder, name),
                                            ROOT)[:-3].split(os.sep)
                    found.append(".".join(parts).removesuffix(".__init__"))
    return sorted(found)


def _source(module):
    path = os.path.join(ROOT, *module.split(".")) + ".py"
    if not os.path.exists(path):
        path = os.path.join(ROOT, *module.split("."), "__init__.py")
    with open(path, encoding="utf-8") as f:
        return f.read()


def _module_doc(module):
    return ast.get_docstring(ast.parse(_source(module))) or ""


MODULES = _modules()
WITH_DOCTESTS = [m for m in MODULES if ">>>" in _source(m)]
WITH_BLOCKS = [m for m in MODULES if "```python" in _module_doc(m)]


@pytest.mark.parametrize("module", WITH_DOCTESTS)
def test_doctests_pass(module):
    result = doctest.testmod(importlib.import_module(module),
                             optionflags=doctest.ELLIPSIS)
    assert result.attempted and not result.failed


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The files and objects the examples name."""
    import keras

    from export import convert, metadata, signature
    from tinybert_tf import checkpoint
    from tinybert_tf.backbone import BertBackbone
    from tinybert_tf.heads import BertClassifier
    from tinybert_tf.tokenizer import BertTextTokenizer

    folder = tmp_path_factory.mktemp("examples")
    keras.utils.set_random_seed(0)
    model = BertClassifier(BertBackbone(tiny_config(
        max_position_embeddings=LENGTH)), len(LABELS), label_names=LABELS)
    tokenizer = BertTextTokenizer(VOCAB, sequence_length=LENGTH)
    inputs = {k: np.asarray(v) for k, v in tokenizer(TEXTS).items()}
    model(inputs)
    checkpoint.save(model, folder / "runs/bbc/student", VOCAB)
    saved = signature.export_saved_model(model, str(folder / "saved"), LENGTH)
    raw = convert.convert(saved, "dynamic_int8")
    content = metadata.add_text_classifier_metadata(raw, VOCAB, LABELS)
    (folder / "model.tflite").write_bytes(raw)
    (folder / "runs/bbc/tflite").mkdir(parents=True)
    (folder / "runs/bbc/tflite/model_dynamic_int8.tflite").write_bytes(content)
    labels = np.array([0, 1, 0, 1, 0, 1])
    rows = "".join(f"{t},{LABELS[y]}\n" for t, y in zip(TEXTS, labels))
    (folder / "train.csv").write_text("text,label\n" + rows * 4)
    (folder / "reviews.csv").write_text("review,stars\n" + rows.replace(
        "business", "1").replace("sport", "5") * 4)
    names = dict(model=model, vocabulary=VOCAB, tokenizer=tokenizer,
                 texts=TEXTS, train_texts=TEXTS, eval_inputs=inputs,
                 train_inputs=inputs, eval_labels=labels, content=content)
    return folder, names


@pytest.mark.parametrize("module", WITH_BLOCKS)
def test_module_example_runs(module, workspace, monkeypatch):
    import tensorflow_datasets as tfds

    folder, names = workspace
    monkeypatch.chdir(folder)
    namespace = dict(names)
    exec(f"from {module} import *", namespace)
    for block in re.findall(r"```python\n(.*?)```", _module_doc(module), re.S):
        # GLUE through TFDS (tasks' example): TFDS's offline mock data.
        with tfds.testing.mock_data(num_examples=8):
            exec(compile(block, f"{module} docstring", "exec"), namespace)
