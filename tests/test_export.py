"""TFLite export: variants, Android signature, metadata, MediaPipe, QAT, trimming.

One tiny classifier (MiniLM vocabulary, 16-d, 1 layer), fitted for a few
steps on a dozen sentences so its outputs are confident, is exported once
per module; the tests read that export.
"""

import dataclasses
import json
import os

import keras
import numpy as np
import pytest

from export import (classifier, convert, device_tokenizer, mask_value,
                    metadata, quantize, runtimes, signature, tflite,
                    vocab_trim)
from export.classifier import ExportOptions, export_classifier
from export.data import ExportData, encode
from tinybert_tf import assets, checkpoint
from tinybert_tf.backbone import BertBackbone, dummy_inputs
from tinybert_tf.config import BertConfig
from tinybert_tf.heads import BertClassifier
from tinybert_tf.layers import FakeQuant
from tinybert_tf.tokenizer import BertTextTokenizer

pytestmark = pytest.mark.slow

LENGTH = 24
LABELS = ["business", "sport", "tech"]
TRAIN = [
    ("shares and profits rose at the bank", 0),
    ("the market fell as oil prices climbed", 0),
    ("the company reported higher sales and profit", 0),
    ("investors sold shares after the bank results", 0),
    ("the team won the match in the final minute", 1),
    ("the striker scored twice in the cup game", 1),
    ("the coach praised the players after the win", 1),
    ("the club lost the league match at home", 1),
    ("the new phone software runs on the chip", 2),
    ("users can download the app on their computer", 2),
    ("the internet firm launched a faster network", 2),
    ("engineers built a robot with a new processor", 2),
]
EVAL = [
    ("profits at the bank fell as shares dropped", 0),
    ("oil prices and the market rose", 0),
    ("sales rose and the company made a profit", 0),
    ("the team lost the cup final", 1),
    ("the players scored in the league game", 1),
    ("the coach left the club after the match", 1),
    ("the app runs on a new computer chip", 2),
    ("the firm made faster software for the network", 2),
    ("a robot with a processor and an internet connection", 2),
]


def _vocabulary():
    return checkpoint.read_vocabulary(
        os.path.join(assets.minilm_dir(), "vocab.txt"))


def _data(tokenizer):
    train_texts = [t for t, _ in TRAIN]
    eval_texts = [t for t, _ in EVAL]
    return ExportData(
        train_inputs=encode(tokenizer, train_texts),
        eval_inputs=encode(tokenizer, eval_texts),
        eval_texts=eval_texts, eval_labels=np.array([y for _, y in EVAL]),
        eval_split="test", label_names=LABELS, train_texts=train_texts)


def _softmax(logits):
    logits = np.asarray(logits, np.float64)
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    vocabulary = _vocabulary()
    tokenizer = BertTextTokenizer(vocabulary, sequence_length=LENGTH)
    data = _data(tokenizer)
    config = BertConfig(vocab_size=len(vocabulary), hidden_size=16,
                        num_layers=1, num_heads=2, intermediate_size=32,
                        max_position_embeddings=64)
    keras.utils.set_random_seed(0)
    model = BertClassifier(BertBackbone(config), len(LABELS), label_names=LABELS)
    model(dummy_inputs())
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(data.train_inputs, np.array([y for _, y in TRAIN]), epochs=30,
              batch_size=12, verbose=0)
    student = str(root / "student")
    checkpoint.save(model, student, vocabulary)
    output = str(root / "tflite")
    report = export_classifier(
        student, output, ExportOptions(
            sequence_length=LENGTH, calibration_samples=len(TRAIN),
            mediapipe_check=len(EVAL), latency_runs=3), data=data)
    return dict(root=root, vocabulary=vocabulary, tokenizer=tokenizer,
                data=data, student=student, output=output, report=report,
                model=checkpoint.load_classifier(student))


def _read(setup, variant):
    with open(os.path.join(setup["output"], convert.model_file_name(variant)),
              "rb") as f:
        return f.read()


# ------------------------------------------------------------ the export

def test_report_matches_files(setup):
    with open(os.path.join(setup["output"], classifier.REPORT_FILE)) as f:
        saved = json.load(f)
    assert saved == json.loads(json.dumps(setup["report"]))
    assert set(saved["variants"]) == set(convert.VARIANTS)
    for variant, result in saved["variants"].items():
        assert result["size_bytes"] == len(_read(setup, variant))
        assert result["median_latency_ms"] > 0
    assert not [p for p in os.listdir(setup["root"]) if p.startswith(".export")]
    # ASCII text: the on-device tokenizer gives the training ids.
    assert saved["device_tokenizer"] == {
        "texts": len(EVAL), "differ_strip_accents_True": 0,
        "differ_strip_accents_True_app_normalized": 0,
        "differ_strip_accents_False": 0}


def test_android_signature(setup):
    from ai_edge_litert.interpreter import Interpreter

    for variant in convert.VARIANTS:
        interpreter = Interpreter(model_content=_read(setup, variant))
        inputs = {d["name"]: d for d in interpreter.get_input_details()}
        assert sorted(inputs) == sorted(
            f"serving_default_{name}:0" for name in signature.INPUT_NAMES)
        for detail in inputs.values():
            assert detail["dtype"] == np.int32
            assert list(detail["shape"]) == [1, LENGTH]
        (output,) = interpreter.get_output_details()
        assert output["dtype"] == np.float32
        assert list(output["shape"]) == [1, len(LABELS)]


def test_variants_agree_with_keras(setup):
    data = setup["data"]
    logits = setup["model"].predict(data.eval_inputs, verbose=0)
    expected = _softmax(logits)  # the Keras student, softmax in numpy
    tolerance = {"float32": 1e-5, "float16": 1e-2}
    for variant in convert.VARIANTS:
        probabilities = runtimes.LiteRTClassifier(
            _read(setup, variant)).predict(data.eval_inputs)
        np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-2)
        if variant in tolerance:
            np.testing.assert_allclose(probabilities, expected,
                                       atol=tolerance[variant])
        agreement = np.mean(probabilities.argmax(-1) == expected.argmax(-1))
        assert agreement >= 8 / 9, variant
        result = setup["report"]["variants"][variant]
        assert result["agreement"] == pytest.approx(agreement)
        assert result["accuracy"] == pytest.approx(np.mean(
            probabilities.argmax(-1) == data.eval_labels))


def test_full_int8_keeps_only_float_ops_in_float(setup):
    content = _read(setup, "full_int8")
    float_ops = convert.op_counts(content)
    assert set(float_ops) <= set(convert.FLOAT_OPS)
    assert {"BATCH_MATMUL", "SOFTMAX", "GELU"} <= set(float_ops)
    assert setup["report"]["variants"]["full_int8"]["float_ops"] == float_ops
    int8_ops = convert.op_counts(content, np.int8)
    assert not set(int8_ops) & set(float_ops)
    # Every weight matrix: the 4 attention, 2 feed-forward, pooler, logits.
    assert int8_ops["FULLY_CONNECTED"] == 8


def test_full_int8_integer_only_is_integer(setup, tmp_path):
    saved = signature.export_saved_model(setup["model"], str(tmp_path), LENGTH)
    content = convert.convert(
        saved, "full_int8",
        convert.representative_dataset(setup["data"].train_inputs),
        integer_only=True)
    # NEG (-mean, in each of the 3 LayerNorms) has no int8 kernel in TFLite.
    assert convert.op_counts(content) == {"NEG": 3}
    assert {"BATCH_MATMUL", "SOFTMAX", "GELU"} <= set(
        convert.op_counts(content, np.int8))


def test_calibration_sees_padding():
    full = {"token_ids": np.tile(np.arange(2, 10, dtype=np.int32), (6, 1)),
            "padding_mask": np.ones((6, 8), np.int32),
            "segment_ids": np.zeros((6, 8), np.int32)}
    rows = list(convert.representative_dataset(full)())
    masks = [row["input_mask"][0] for row in rows]
    assert [m.all() for m in masks] == [True, False] * 3
    for row, mask in zip(rows, masks):
        length = int(mask.sum())
        assert mask[:length].all() and length >= 1
        assert row["input_word_ids"][0, length - 1] == 9  # [SEP] kept last
        assert not row["input_word_ids"][0, length:].any()


def test_metadata_holds_vocabulary_and_labels(setup):
    for variant in ("float32", "full_int8"):
        content = _read(setup, variant)
        assert metadata.read_vocabulary(content) == setup["vocabulary"]
        assert metadata.read_label_names(content) == LABELS


def test_mediapipe_text_classifier_matches_keras(setup):
    data = setup["data"]
    keras_top = setup["model"].predict(data.eval_inputs, verbose=0).argmax(-1)
    for variant in ("float32", "full_int8"):
        path = os.path.join(setup["output"], convert.model_file_name(variant))
        top = runtimes.mediapipe_top_classes(path, data.eval_texts)
        assert np.mean(np.asarray(top) == keras_top) >= 8 / 9, variant
    assert setup["report"]["variants"]["float32"]["mediapipe_agreement"] == 1.0


def test_metadata_parser_version_port():
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb
    import flatbuffers

    def version_of(subgraph):
        model = fb.ModelMetadataT()
        model.subgraphMetadata = [subgraph]
        builder = flatbuffers.Builder(0)
        builder.Finish(model.Pack(builder), b"M001")
        return metadata.minimum_parser_version(builder.Output())

    assert version_of(fb.SubGraphMetadataT()) == "1.0.0"
    bert = fb.ProcessUnitT()
    bert.optionsType = fb.ProcessUnitOptions.BertTokenizerOptions
    bert.options = fb.BertTokenizerOptionsT()
    subgraph = fb.SubGraphMetadataT()
    subgraph.inputProcessUnits = [bert]
    assert version_of(subgraph) == "1.1.0"
    subgraph.inputTensorGroups = [fb.TensorGroupT()]
    assert version_of(subgraph) == "1.2.0"


# ------------------------------------------------------------ tokenizer

def test_device_tokenizer_differs_only_by_accents():
    vocabulary = _vocabulary()
    assert "café" not in vocabulary and "cafe" in vocabulary
    texts = ["The market rose, said the BANK's chief.",
             "A café in Zürich served crème brûlée.",
             "Plain text with numbers 123 and symbols: £5 & 10%!"]
    device = device_tokenizer.device_token_ids(texts, vocabulary, LENGTH)
    ids = {strip: np.asarray(BertTextTokenizer(
        vocabulary, LENGTH, strip_accents=strip)(texts)["token_ids"])
        for strip in (True, False)}
    np.testing.assert_array_equal(device, ids[False])
    differs = np.any(device != ids[True], axis=1)
    assert differs.tolist() == [False, True, False]
    unk = vocabulary.index("[UNK]")
    assert unk in device[1] and unk not in ids[True][1]
    normalized = device_tokenizer.device_token_ids(
        [device_tokenizer.app_normalize(t) for t in texts], vocabulary, LENGTH)
    np.testing.assert_array_equal(normalized, ids[True])


# ------------------------------------------------------------ attention mask

def test_mask_value_choice_is_verified(setup):
    inputs = setup["data"].eval_inputs
    assert inputs["padding_mask"].min() == 0  # the texts are padded
    value, effect = mask_value.choose_mask_value(setup["student"], inputs)
    assert value == mask_value.MASK_VALUE_CANDIDATES[0] and effect < 1e-4
    # The check can fail: a mask of -1 lets padding leak into attention.
    assert mask_value.mask_value_effect(setup["student"], inputs, -1.0) > 1e-3
    assert setup["report"]["attention_mask_value"]["exported"] == value


def _full_int8_errors_by_mask_value(setup, tmp_path, integer_only):
    """Largest probability error of full_int8 vs Keras, per mask constant."""
    data = setup["data"]
    calibration = convert.representative_dataset(data.train_inputs)
    expected = _softmax(setup["model"].predict(data.eval_inputs, verbose=0))
    errors = {}
    for value in (-10000.0, mask_value.MASK_VALUE_CANDIDATES[0]):
        model = checkpoint.load_classifier(setup["student"],
                                           attention_mask_value=value)
        saved = signature.export_saved_model(
            model, str(tmp_path / str(value)), LENGTH)
        content = convert.convert(saved, "full_int8", calibration,
                                  integer_only)
        probabilities = runtimes.LiteRTClassifier(content).predict(
            data.eval_inputs)
        errors[value] = np.abs(probabilities - expected).max()
    return errors


def test_integer_only_full_int8_with_bert_mask_constant_collapses(
        setup, tmp_path):
    errors = _full_int8_errors_by_mask_value(setup, tmp_path, True)
    assert errors[-10000.0] > 2 * errors[mask_value.MASK_VALUE_CANDIDATES[0]]


def test_full_int8_float_attention_takes_the_bert_mask_constant(
        setup, tmp_path):
    errors = _full_int8_errors_by_mask_value(setup, tmp_path, False)
    assert max(errors.values()) < 0.05


def test_mask_value_candidates_start_at_the_qat_constant():
    candidates = mask_value.MASK_VALUE_CANDIDATES
    assert candidates[0] == quantize.EXPORT_MASK_VALUE
    assert list(candidates) == sorted(candidates, reverse=True)


# ------------------------------------------------------------ QAT

def _numpy_fake_quant(x, low, high):
    """TensorFlow's FakeQuantWithMinMaxVars (8 bits), written out."""
    scale = (high - low) / 255.0
    zero_point = np.clip(np.round(-low / scale), 0, 255)
    nudged_low, nudged_high = -zero_point * scale, (255 - zero_point) * scale
    clipped = np.clip(x, nudged_low, nudged_high)
    return np.floor((clipped - nudged_low) / scale + 0.5) * scale + nudged_low


def test_fake_quant_layer_matches_numpy():
    x = np.linspace(-3.0, 5.0, 101).astype("float32")
    layer = FakeQuant(momentum=0.5)
    out = np.asarray(layer(x, training=True))
    assert (float(layer.range_min.numpy()), float(layer.range_max.numpy())) \
        == (-3.0, 5.0)
    np.testing.assert_allclose(out, _numpy_fake_quant(x, -3.0, 5.0),
                               atol=1e-5)
    layer(x * 3.0, training=True)  # EMA: half old, half new range
    assert float(layer.range_max.numpy()) == pytest.approx(10.0)
    layer(x * 100.0, training=False)  # inference never moves the range
    assert float(layer.range_max.numpy()) == pytest.approx(10.0)


def test_fake_quant_is_off_by_default(setup):
    model = setup["model"]
    assert not quantize.fake_quants(model)
    names = [w.path for w in model.weights]
    assert not any("fake_quant" in name for name in names)


def test_quantization_aware_finetune_and_export(setup, tmp_path):
    data = setup["data"]
    model = checkpoint.load_classifier(setup["student"])
    before = len(model.weights)
    history = quantize.quantization_aware_finetune(
        model, data.train_inputs,
        options=quantize.QATOptions(epochs=1, batch_size=4), verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert model.config.attention_mask_value == quantize.EXPORT_MASK_VALUE
    ranges = quantize.fake_quant_ranges(model)
    assert len(model.weights) == before + 3 * len(ranges)
    assert all(low <= 0 <= high for low, high in ranges.values())
    # Saved and reloaded: same fake-quantized outputs.
    qat_dir = str(tmp_path / "qat")
    quantize.save_qat_checkpoint(model, qat_dir, setup["vocabulary"])
    reloaded = quantize.load_qat_classifier(qat_dir)
    np.testing.assert_allclose(
        reloaded.predict(data.eval_inputs, verbose=0),
        model.predict(data.eval_inputs, verbose=0), atol=1e-5)
    # A QAT checkpoint is also a plain float checkpoint.
    assert not quantize.fake_quants(checkpoint.load_classifier(qat_dir))
    # The converter takes the learned range of the logits.
    report = export_classifier(
        qat_dir, str(tmp_path / "out"), ExportOptions(
            variants="full_int8", sequence_length=LENGTH, mediapipe_check=0,
            tokenizer_check=False, latency_runs=2), data=data)
    assert report["qat_ranges"] and report["variants"]["full_int8"][
        "agreement"] >= 8 / 9
    from ai_edge_litert.interpreter import Interpreter
    with open(str(tmp_path / "out" / "model_full_int8.tflite"), "rb") as f:
        interpreter = Interpreter(model_content=f.read())
    low, high = ranges["quantization.classifier.logits"]
    scales = [d["quantization"][0] for d in interpreter.get_tensor_details()]
    assert np.isclose(scales, (high - low) / 255.0, rtol=1e-3).any()


# ------------------------------------------------------------ trimming

def test_trimmed_model_keeps_training_text_outputs(setup):
    model, vocabulary = setup["model"], setup["vocabulary"]
    texts = setup["data"].train_texts
    trimmed = vocab_trim.trim_classifier(model, vocabulary, texts,
                                         setup["tokenizer"])
    kept = set(trimmed.kept_ids.tolist())
    pieces = setup["tokenizer"].tokenize(texts).flat_values.numpy()
    assert set(pieces.tolist()) <= kept
    assert all(vocabulary.index(t) in kept
               for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "##a"))
    assert trimmed.vocabulary == [vocabulary[i] for i in sorted(kept)]
    assert trimmed.model.config.vocab_size == len(kept) < len(vocabulary) / 10
    trimmed_inputs = encode(
        BertTextTokenizer(trimmed.vocabulary, LENGTH), texts)
    np.testing.assert_array_equal(
        trimmed.kept_ids[trimmed_inputs["token_ids"]],
        setup["data"].train_inputs["token_ids"])
    np.testing.assert_allclose(
        trimmed.model.predict(trimmed_inputs, verbose=0),
        model.predict(setup["data"].train_inputs, verbose=0), atol=1e-5)


def test_export_with_trimmed_vocabulary(setup, tmp_path):
    report = export_classifier(
        setup["student"], str(tmp_path / "trim"), ExportOptions(
            variants="dynamic_int8", sequence_length=LENGTH, trim_vocab=True,
            mediapipe_check=len(EVAL), tokenizer_check=False,
            latency_runs=2), data=setup["data"])
    result = report["variants"]["dynamic_int8"]
    assert result["size_bytes"] < result["untrimmed_size_bytes"] / 2
    with open(str(tmp_path / "trim" / "model_dynamic_int8.tflite"), "rb") as f:
        vocabulary = metadata.read_vocabulary(f.read())
    assert len(vocabulary) == report["vocab_trim"]["vocab_size_after"]
    assert result["mediapipe_agreement"] == 1.0
    # MediaPipe classified every eval text: its accuracy is LiteRT's.
    assert result["mediapipe_examples"] == len(EVAL)
    assert result["mediapipe_accuracy"] == pytest.approx(result["accuracy"])


# ------------------------------------------------------------ bad input

def test_checkpoint_without_head_is_refused(setup, tmp_path):
    backbone = BertBackbone(setup["model"].config)
    backbone(dummy_inputs())
    path = str(tmp_path / "backbone")
    checkpoint.save(backbone, path, setup["vocabulary"])
    with pytest.raises(ValueError, match="no classification head"):
        export_classifier(path, str(tmp_path / "out"),
                          ExportOptions(sequence_length=LENGTH),
                          data=setup["data"])


def test_full_int8_needs_representative_data(setup, tmp_path):
    with pytest.raises(ValueError, match="representative data"):
        convert.convert(str(tmp_path), "full_int8", None)
    data = ExportData(**{**setup["data"].__dict__,
                                "train_inputs": None})
    with pytest.raises(ValueError, match="representative data"):
        export_classifier(setup["student"], str(tmp_path / "out"),
                          ExportOptions(variants="full_int8",
                                        sequence_length=LENGTH), data=data)


def test_sequence_length_above_max_is_refused(setup, tmp_path):
    with pytest.raises(ValueError, match="max_position_embeddings=64"):
        export_classifier(setup["student"], str(tmp_path / "out"),
                          ExportOptions(sequence_length=65),
                          data=setup["data"])


def test_existing_output_is_refused(setup):
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_classifier(setup["student"], setup["output"],
                          ExportOptions(sequence_length=LENGTH),
                          data=setup["data"])


def test_unknown_variant_is_refused(setup, tmp_path):
    with pytest.raises(ValueError, match="int4"):
        export_classifier(setup["student"], str(tmp_path / "out"),
                          ExportOptions(variants="int4"), data=setup["data"])


def test_export_options_normalize_and_freeze():
    options = ExportOptions(variants="full_int8, float32,full_int8")
    assert options.variants == ("full_int8", "float32")
    assert ExportOptions().variants == convert.VARIANTS
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.strict = True


def test_command_line_options():
    options = tflite.options_from_args(tflite.parse_args([
        "--checkpoint", "ckpt", "--output", "out", "--train-file", "t.csv",
        "--text-column", "body", "--variants", "dynamic_int8",
        "--mediapipe-examples", "-1", "--max-eval", "7", "--strict",
        "--integer-only"]))
    assert options == ExportOptions(
        task=None, train_file="t.csv", task_options={"text_column": "body"},
        variants=("dynamic_int8",), mediapipe_check=None, max_eval=7,
        strict=True, integer_only=True)
    defaults = tflite.options_from_args(tflite.parse_args(
        ["--checkpoint", "ckpt", "--output", "out"]))
    assert defaults == ExportOptions()
    qat = tflite.options_from_args(tflite.parse_args([
        "--checkpoint", "ckpt", "--output", "out", "--qat-epochs", "3",
        "--no-tokenizer-check", "--latency-runs", "4"]))
    assert qat == ExportOptions(qat=quantize.QATOptions(epochs=3),
                                tokenizer_check=False, latency_runs=4)


def test_qat_from_the_export_with_one_mask_value(setup, tmp_path):
    """QAT options fine-tune the student with fake quantization before the
    conversion (a command now produces a QAT student, saved next to the
    files); an explicit mask value is the one of every variant."""
    report = export_classifier(
        setup["student"], str(tmp_path / "qat"), ExportOptions(
            variants="dynamic_int8,full_int8", sequence_length=LENGTH,
            mediapipe_check=0, tokenizer_check=False, latency_runs=2,
            mask_value=-64.0, qat=quantize.QATOptions(epochs=1, batch_size=4)),
        data=setup["data"])
    assert report["qat_ranges"] and report["qat"]["mask_value"] == -64.0
    assert report["attention_mask_value"]["exported"] == -64.0
    assert {v["attention_mask_value"] for v in report["variants"].values()} == {
        -64.0}
    saved = tmp_path / "qat" / classifier.QAT_CHECKPOINT
    qat_model = quantize.load_qat_classifier(str(saved))
    assert qat_model.config.attention_mask_value == -64.0
    # The QAT checkpoint itself exports again, keeping its mask value.
    again = export_classifier(
        str(saved), str(tmp_path / "again"), ExportOptions(
            variants="full_int8", sequence_length=LENGTH, mediapipe_check=0,
            tokenizer_check=False, latency_runs=2), data=setup["data"])
    assert again["variants"]["full_int8"]["attention_mask_value"] == -64.0


def test_command_line(setup, tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("text,label\n" + "\n".join(
        f"{text},{LABELS[label]}" for text, label in TRAIN + EVAL) + "\n")
    output = str(tmp_path / "cli")
    args = ["--checkpoint", setup["student"], "--output", output,
            "--train-file", str(train), "--variants", "dynamic_int8",
            "--sequence-length", str(LENGTH), "--eval-split", "dev"]
    assert tflite.main(args) == 0
    with open(os.path.join(output, classifier.REPORT_FILE)) as f:
        assert json.load(f)["label_names"] == LABELS
    assert tflite.main(args) == 2  # exists: refused (error: ..., exit 2)


def test_the_files_take_the_students_training_length(setup, tmp_path):
    """Without a sequence length the export uses the one the student was
    trained at (trainers.task may choose it), and the CLI checks that one."""
    student = str(tmp_path / "student")
    checkpoint.save(setup["model"], student, setup["vocabulary"],
                    extras={"sequence_length": LENGTH})
    report = export_classifier(student, str(tmp_path / "out"), ExportOptions(
        variants="float32", mediapipe_check=0, latency_runs=1),
        data=setup["data"])
    assert report["sequence_length"] == LENGTH
    checkpoint.save(setup["model"], str(tmp_path / "long"),
                    setup["vocabulary"], extras={"sequence_length": 65})
    with pytest.raises(ValueError, match="--sequence-length 65 exceeds"):
        tflite.check_args(tflite.parse_args([
            "--checkpoint", str(tmp_path / "long"), "--output",
            str(tmp_path / "out2")]))
