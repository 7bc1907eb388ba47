"""`python -m trainers.predict`: texts in, labels out, from a checkpoint
(Keras) or a .tflite file (LiteRT without TensorFlow, or MediaPipe).

One tiny 3-label classifier (the vocabulary of tests/tiny.py, 16-d, 1
layer), fitted for a few steps so its outputs are confident, is saved as a
checkpoint and exported to a dynamic-int8 .tflite file with metadata once
per module.
"""

import io
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from export import convert, metadata, signature
from export.predictor import TFLitePredictor, WordPieceEncoder
from tinybert_tf import assets, checkpoint
from tinybert_tf.backbone import BertBackbone
from tinybert_tf.heads import BertClassifier
from tinybert_tf.predict import Predictor, format_plain, read_texts
from tinybert_tf.tokenizer import BertTextTokenizer
from tiny import VOCAB, save_tiny_backbone, tiny_config
from trainers import predict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LENGTH = 16
LABELS = ["business", "sport", "arts"]
TRAIN = [("shares rose on the market", 0), ("the price fell", 0),
         ("market shares fell", 0), ("the price of shares rose", 0),
         ("the team won the game", 1), ("the team lost", 1),
         ("a game of sport", 1), ("the sport team won", 1),
         ("the film and the music", 2), ("a play in the city", 2),
         ("music film play", 2), ("the city film", 2)]
TEXTS = ["the market rose", "the team won", "a film with music",
         "shares fell", "the game was lost", "a play"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    keras.utils.set_random_seed(0)
    model = BertClassifier(BertBackbone(tiny_config(num_layers=1)),
                           len(LABELS), label_names=LABELS, pooling="mean")
    tokenizer = BertTextTokenizer(VOCAB, sequence_length=LENGTH)
    inputs = {k: np.asarray(v) for k, v in
              tokenizer([t for t, _ in TRAIN]).items()}
    model(inputs)
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(inputs, np.array([y for _, y in TRAIN]), epochs=40,
              batch_size=12, verbose=0)
    student = str(root / "student")
    checkpoint.save(model, student, VOCAB, extras={"sequence_length": LENGTH})
    saved = signature.export_saved_model(model, str(root / "saved"), LENGTH)
    raw = convert.convert(saved, "dynamic_int8")
    tflite = root / "model_dynamic_int8.tflite"
    tflite.write_bytes(metadata.add_text_classifier_metadata(raw, VOCAB,
                                                             LABELS))
    bare = root / "no_metadata.tflite"
    bare.write_bytes(raw)
    return dict(root=root, student=student, tflite=str(tflite),
                bare=str(bare), keras=Predictor(student))


def _run(argv, capsys):
    status = predict.main(argv)
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def _json(lines):
    return [json.loads(line) for line in lines]


# ------------------------------------------------------------ tokenization

def test_tf_free_tokenization_matches_training():
    vocabulary = checkpoint.read_vocabulary(
        os.path.join(assets.minilm_dir(), "vocab.txt"))
    texts = [
        "The market rose, said the BANK's chief.",
        "A café in Zürich served crème brûlée; ÉLAN, naïve façade!",
        "Punctuation: (a) [b] {c} -- \"quoted\" 'single' ... 10% £5 & $3?!",
        "1.58\xa0million zero\u200bwidth tab\there\nnew line\r",
        "ΑΧΙΛΛΕΥΣ Straße ﬁne Proudhon\u00b4s ideas",
        "中文字 テスト 한국어 mixed",
        "xqzjvw blorptastic unfathomabilityish qwertyuiopasdfgh",
        " ".join(["a long text that is truncated"] * 20),
        "x" * 150, "α" * 60,  # words over 100 UTF-8 bytes are [UNK]
        "", "   ", ".", "[CLS] [SEP] [PAD]",
    ]
    for length in (24, 64):
        ours = WordPieceEncoder(vocabulary, length)(texts)
        training = BertTextTokenizer(vocabulary, length)(texts)
        for name, values in ours.items():
            assert values.dtype == np.int32 and values.shape == (
                len(texts), length)
            expected = np.asarray(training[name])
            differ = np.flatnonzero((values != expected).any(axis=1))
            assert not differ.size, (name, texts[differ[0]],
                                     values[differ[0]], expected[differ[0]])
    assert ours["padding_mask"][7].all()  # the long text fills all 64


# ------------------------------------------------------------ the library

def test_predictors_read_their_settings(models, tmp_path):
    assert models["keras"].sequence_length == LENGTH  # the extras' length
    assert models["keras"].label_names == LABELS
    lite = TFLitePredictor(models["tflite"])
    assert (lite.sequence_length, lite.label_names) == (LENGTH, LABELS)
    assert lite.vocabulary == VOCAB
    # No recorded length: 128, at most max_position_embeddings (64 here).
    model = checkpoint.load_classifier(models["student"])
    checkpoint.save(model, tmp_path / "plain", VOCAB)
    assert Predictor(tmp_path / "plain").sequence_length == 64
    assert Predictor(tmp_path / "plain", 20).sequence_length == 20


def test_checkpoint_and_tflite_agree(models):
    keras_probabilities = models["keras"].probabilities(TEXTS)
    lite = TFLitePredictor(models["tflite"])
    probabilities = lite.probabilities(TEXTS)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-3)
    np.testing.assert_array_equal(probabilities.argmax(-1),
                                  keras_probabilities.argmax(-1))
    np.testing.assert_allclose(probabilities, keras_probabilities, atol=0.05)
    # The model learned the topics, so the comparison is not on ties.
    assert [LABELS[i] for i in probabilities.argmax(-1)] == [
        "business", "sport", "arts", "business", "sport", "arts"]
    predictions = lite.predict(TEXTS)
    assert [p.label for p in predictions] == [
        p.label for p in models["keras"].predict(TEXTS)]
    assert list(predictions[0].probabilities)[0] == predictions[0].label


def test_mediapipe_runtime_agrees(models, capsys):
    pytest.importorskip("mediapipe.tasks.python.text")
    lite = TFLitePredictor(models["tflite"]).probabilities(TEXTS)
    np.testing.assert_allclose(
        TFLitePredictor(models["tflite"], "mediapipe").probabilities(TEXTS),
        lite, atol=1e-3)
    status, lines, _ = _run(["--model", models["tflite"], "--runtime",
                             "mediapipe", "--json", *TEXTS[:2]], capsys)
    assert status == 0
    assert [r["label"] for r in _json(lines)] == ["business", "sport"]


def test_read_texts(tmp_path):
    assert read_texts(["a", "b"]) == ["a", "b"]
    assert read_texts(["a", "-", "d"], stdin=io.StringIO("b\n\nc\n")) == [
        "a", "b", "c", "d"]
    assert read_texts(stdin=io.StringIO("x\r\ny\n")) == ["x", "y"]
    (tmp_path / "t.jsonl").write_text('{"text": "one"}\n{"text": "two"}\n')
    assert read_texts(["zero"], file=tmp_path / "t.jsonl") == [
        "zero", "one", "two"]


def test_format_plain_shortens_long_texts(models):
    (prediction,) = models["keras"].predict(["the team won " * 20])
    line = format_plain(prediction, top=1, width=30)
    assert line.startswith("sport  ") and "(" not in line
    assert line.endswith("...") and len(line) < 50


# ------------------------------------------------------------ the command

def test_texts_on_the_command_line(models, capsys):
    status, lines, _ = _run(["--model", models["student"], *TEXTS[:3]],
                            capsys)
    assert status == 0 and len(lines) == 3
    for line, text, label in zip(lines, TEXTS, LABELS):
        assert line.startswith(f"{label}  0.") and line.endswith(f"  {text}")
        others = line.split("(")[1].split(")")[0].split(", ")
        assert sorted(o.split()[0] for o in others) == sorted(
            set(LABELS) - {label})


def test_text_file(models, tmp_path, capsys):
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(TEXTS[:2]) + "\n\n")
    status, lines, _ = _run(["--model", models["tflite"], "--file",
                             str(path), "--top", "2"], capsys)
    assert status == 0 and len(lines) == 2
    assert lines[0].startswith("business") and lines[0].count(",") == 0


def test_csv_column_and_json(models, tmp_path, capsys):
    path = tmp_path / "news.csv"
    path.write_text("id,body\n" + "".join(
        f'{i},"{t}"\n' for i, t in enumerate(TEXTS[3:])))
    status, lines, _ = _run(["--model", models["tflite"], "--file",
                             str(path), "--text-column", "body", "--json",
                             "--top", "2"], capsys)
    assert status == 0
    rows = _json(lines)
    assert [r["text"] for r in rows] == TEXTS[3:]
    assert [r["label"] for r in rows] == ["business", "sport", "arts"]
    for row in rows:
        assert len(row["probabilities"]) == 2
        assert list(row["probabilities"])[0] == row["label"]
    status, lines, _ = _run(["--model", models["student"], "--file",
                             str(path), "--text-column", "body", "--json"],
                            capsys)
    for keras_row, row in zip(_json(lines), rows):
        assert keras_row["label"] == row["label"]
        assert sum(keras_row["probabilities"].values()) == pytest.approx(
            1.0, abs=1e-4)
        assert set(keras_row["probabilities"]) == set(LABELS)


def test_standard_input(models, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("the team won\nshares\n"))
    status, lines, _ = _run(["--model", models["tflite"], "--json"], capsys)
    assert status == 0
    assert [r["text"] for r in _json(lines)] == ["the team won", "shares"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("a film\n"))
    status, lines, _ = _run(["--model", models["tflite"], "--json",
                             "the market rose", "-"], capsys)
    assert [r["label"] for r in _json(lines)] == ["business", "arts"]


# ------------------------------------------------------------ bad input

def _bad_inputs(models, tmp_path):
    (tmp_path / "empty_dir").mkdir()
    backbone = save_tiny_backbone(str(tmp_path / "backbone"))
    (tmp_path / "garbage.tflite").write_bytes(b"not a model at all")
    (tmp_path / "blank.txt").write_text("\n  \n")
    (tmp_path / "news.csv").write_text("id,body\n1,the team won\n")
    missing = str(tmp_path / "missing")
    student, tflite = models["student"], models["tflite"]
    return [
        (["--model", missing, "a"], f"Model not found: {missing}"),
        (["--model", str(tmp_path / "empty_dir"), "a"],
         "empty_dir is not a checkpoint directory"),
        (["--model", backbone, "a"], "has no classifier head"),
        (["--model", models["bare"], "a"],
         "no_metadata.tflite has no classifier metadata"),
        (["--model", str(tmp_path / "garbage.tflite"), "a"],
         "garbage.tflite is not a classifier"),
        (["--model", str(tmp_path / "news.csv"), "a"],
         "neither a checkpoint directory nor a .tflite file"),
        (["--model", tflite, "--file", f"{missing}.txt"],
         f"Text file not found: {missing}.txt"),
        (["--model", tflite, "--file", str(tmp_path / "news.csv")],
         "news.csv: missing column(s) ['text']"),
        (["--model", tflite, "--file", str(tmp_path / "blank.txt")],
         "blank.txt holds no texts"),
        (["--model", tflite, "--file", str(tmp_path / "news.parquet")],
         "unsupported file type '.parquet'"),
        (["--model", tflite], "No texts to classify"),
        (["--model", tflite, "--sequence-length", "32", "a"],
         f"exactly {LENGTH} tokens"),
        (["--model", student, "--runtime", "litert", "a"],
         "is a checkpoint directory"),
    ]


def test_bad_input_is_an_error_message(models, tmp_path, monkeypatch,
                                       capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # piped, empty
    for argv, message in _bad_inputs(models, tmp_path):
        status, lines, err = _run(argv, capsys)
        assert status == 2 and not lines, argv
        assert err.startswith("error: ") and message in err, (argv, err)


# ------------------------------------------------------------ a process

WRAPPER = """
import runpy, sys
sys.argv = ["trainers.predict", *sys.argv[1:]]
status = 0
try:
    runpy.run_module("trainers.predict", run_name="__main__", alter_sys=True)
except SystemExit as exit:
    status = exit.code
print("HEAVY", sorted(m for m in ("tensorflow", "keras", "keras_hub")
                      if m in sys.modules), file=sys.stderr)
sys.exit(status)
"""


def _process(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-c", WRAPPER, *args], cwd=ROOT,
                          env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_tflite_command_does_not_import_tensorflow(models):
    result = _process("--model", models["tflite"], "the team won")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sport  ")
    assert "HEAVY []" in result.stderr
    bad = _process("--model", models["bare"], "the team won")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error: ") and "HEAVY []" in bad.stderr
