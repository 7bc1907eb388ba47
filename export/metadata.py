"""TFLite metadata for MediaPipe's TextClassifier: WordPiece vocab + labels.

MediaPipe Tasks (and Android's `com.google.mediapipe:tasks-text`) read the
tokenizer and the label names from the model's metadata, written here with
mediapipe's own writer (`MetadataWriter.create_for_bert_model`).

The mediapipe 1.2.2 wheel does not ship the compiled module
`mediapipe.tasks.cc.metadata.python._pywrap_metadata_version` that its
metadata writer imports; `_register_metadata_version_stand_in` puts a
pure-Python port of its one function in `sys.modules` first.

Example:

```python
from pathlib import Path
from export import metadata
model = Path("model.tflite").read_bytes()
with_metadata = metadata.add_text_classifier_metadata(
    model, vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"],
    label_names=["neg", "pos"])
metadata.read_vocabulary(with_metadata)  # ['[PAD]', '[UNK]', ...]
```
"""

import gc
import os
import sys
import tempfile
import types
import zipfile

_VERSION_MODULE = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"

VOCAB_FILE = "vocab.txt"
LABELS_FILE = "labels.txt"


def minimum_parser_version(metadata_buffer):
    """Oldest metadata parser that reads `metadata_buffer` (a port of C++).

    Port of `GetMinimumMetadataParserVersion` in mediapipe's
    `metadata_version.cc`: each schema feature has the parser version that
    introduced it; the answer is the newest feature used.
    """
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    metadata = fb.ModelMetadataT.InitFromObj(
        fb.ModelMetadata.GetRootAsModelMetadata(bytes(metadata_buffer), 0))
    versions = ["1.0.0"]

    def files(items):
        for item in items or []:
            if item.type == fb.AssociatedFileType.VOCABULARY:
                versions.append("1.0.1")
            if item.type == fb.AssociatedFileType.SCANN_INDEX_FILE:
                versions.append("1.4.0")
            if item.version is not None:
                versions.append("1.4.1")

    def process_units(units):
        options = fb.ProcessUnitOptions
        by_type = {options.BertTokenizerOptions: "1.1.0",
                   options.SentencePieceTokenizerOptions: "1.1.0",
                   options.RegexTokenizerOptions: "1.2.1"}
        for unit in units or []:
            versions.append(by_type.get(unit.optionsType, "1.0.0"))
            if unit.optionsType in (options.BertTokenizerOptions,
                                    options.SentencePieceTokenizerOptions,
                                    options.RegexTokenizerOptions):
                for field in ("vocabFile", "sentencePieceModel"):
                    files(getattr(unit.options, field, None))

    def tensors(items):
        for tensor in items or []:
            files(tensor.associatedFiles)
            process_units(tensor.processUnits)
            content = tensor.content
            if (content is not None and content.contentPropertiesType
                    == fb.ContentProperties.AudioProperties):
                versions.append("1.3.0")

    files(metadata.associatedFiles)
    for subgraph in metadata.subgraphMetadata or []:
        files(subgraph.associatedFiles)
        tensors(subgraph.inputTensorMetadata)
        tensors(subgraph.outputTensorMetadata)
        if subgraph.inputProcessUnits:
            versions.append("1.1.0")
            process_units(subgraph.inputProcessUnits)
        if subgraph.outputProcessUnits:
            versions.append("1.1.0")
            process_units(subgraph.outputProcessUnits)
        if subgraph.inputTensorGroups or subgraph.outputTensorGroups:
            versions.append("1.2.0")
        if subgraph.customMetadata:
            versions.append("1.5.0")
    return max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))


def _register_metadata_version_stand_in():
    try:  # a wheel that ships the compiled module needs no stand-in
        __import__(_VERSION_MODULE)
        return
    except ImportError:
        pass
    module = types.ModuleType(_VERSION_MODULE)
    module.GetMinimumMetadataParserVersion = minimum_parser_version
    # `from <package> import _pywrap_metadata_version` looks the package up
    # in sys.modules first; its absent parents are never imported.
    package_name, _, leaf = _VERSION_MODULE.rpartition(".")
    package = sys.modules.get(package_name) or types.ModuleType(package_name)
    package.__path__ = getattr(package, "__path__", [])
    setattr(package, leaf, module)
    sys.modules.setdefault(package_name, package)
    sys.modules[_VERSION_MODULE] = module


def add_text_classifier_metadata(model_buffer, vocabulary, label_names):
    """`model_buffer` (.tflite bytes) with BERT-tokenizer + label metadata.

    The model's inputs must be the tensors `serving_default_input_word_ids:0`,
    `serving_default_input_mask:0`, `serving_default_input_type_ids:0`.
    """
    if not vocabulary:
        raise ValueError("The vocabulary to embed in the metadata is empty.")
    if not label_names:
        raise ValueError("Label names are needed for the classifier metadata.")
    _register_metadata_version_stand_in()
    from mediapipe.tasks.python.metadata.metadata_writers import (
        metadata_writer, text_classifier)

    with tempfile.TemporaryDirectory() as directory:
        vocab_file = os.path.join(directory, VOCAB_FILE)
        with open(vocab_file, "w", encoding="utf-8") as f:
            f.write("\n".join(vocabulary) + "\n")
        writer = text_classifier.MetadataWriter.create_for_bert_model(
            bytearray(model_buffer),
            tokenizer=metadata_writer.BertTokenizer(vocab_file),
            labels=metadata_writer.Labels().add(
                [str(name) for name in label_names],
                exported_filename=LABELS_FILE))
        try:
            model_with_metadata, _ = writer.populate()
        finally:
            # The writer's __del__ needs the os module; collected at
            # interpreter exit it fails noisily, so release it now.
            del writer
            gc.collect()
    return bytes(model_with_metadata)


def _associated_file(model_buffer, name):
    # Metadata's associated files are packed as a zip appended to the model.
    import io
    with zipfile.ZipFile(io.BytesIO(model_buffer)) as archive:
        return archive.read(name).decode("utf-8")


def read_vocabulary(model_buffer):
    """The WordPiece vocabulary packed in a .tflite's metadata."""
    return _associated_file(model_buffer, VOCAB_FILE).splitlines()


def read_label_names(model_buffer):
    """The label names packed in a .tflite's metadata."""
    return _associated_file(model_buffer, LABELS_FILE).splitlines()
