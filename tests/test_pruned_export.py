"""A pruned student (fewer heads per layer, one layer without heads,
narrower FFNs) exports to all four TFLite variants with MediaPipe metadata,
with its vocabulary trimmed, and the files agree with Keras."""

import keras
import numpy as np
import pytest

from export import metadata
from export.classifier import ExportOptions, export_classifier
from tests.test_export import EVAL, LABELS, LENGTH, TRAIN, _data, _vocabulary
from tinybert_tf import checkpoint, pruning
from tinybert_tf.backbone import BertBackbone, dummy_inputs
from tinybert_tf.config import BertConfig
from tinybert_tf.heads import BertClassifier
from tinybert_tf.tokenizer import BertTextTokenizer

pytestmark = pytest.mark.slow


def test_pruned_student_exports_every_variant_trimmed(tmp_path):
    vocabulary = _vocabulary()
    tokenizer = BertTextTokenizer(vocabulary, sequence_length=LENGTH)
    data = _data(tokenizer)
    keras.utils.set_random_seed(0)
    model = BertClassifier(BertBackbone(BertConfig(
        vocab_size=len(vocabulary), hidden_size=16, num_layers=2,
        num_heads=4, intermediate_size=32, max_position_embeddings=64)),
        len(LABELS), label_names=LABELS)
    model(dummy_inputs())
    small = pruning.prune(model, pruning.PruningPlan(
        heads=((1, 3), ()), neurons=(np.arange(0, 32, 2), np.arange(5))))
    small.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    small.fit(data.train_inputs, np.array([y for _, y in TRAIN]), epochs=30,
              batch_size=12, verbose=0)
    student = str(tmp_path / "student")
    checkpoint.save(small, student, vocabulary)
    report = export_classifier(student, str(tmp_path / "tflite"), ExportOptions(
        sequence_length=LENGTH, calibration_samples=len(TRAIN),
        trim_vocab=True, mediapipe_check=len(EVAL), tokenizer_check=False,
        latency_runs=2), data=data)
    assert set(report["variants"]) == {"float32", "float16", "dynamic_int8",
                                       "full_int8"}
    keras_accuracy = np.mean(np.argmax(
        small.predict(data.eval_inputs, verbose=0), -1) == data.eval_labels)
    for variant, result in report["variants"].items():
        assert result["mediapipe_agreement"] == 1.0, variant
        if variant != "full_int8":
            assert result["accuracy"] == keras_accuracy, variant
        with open(tmp_path / "tflite" / f"model_{variant}.tflite", "rb") as f:
            assert len(metadata.read_vocabulary(f.read())) == \
                report["vocab_trim"]["vocab_size_after"]
