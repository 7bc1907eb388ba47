"""A task's labelled splits as a run asks for them: the source chosen by
`TaskDataOptions` (BBC News, a GLUE task through TFDS, or the user's files)
and the splits capped to a number of examples.

Example:
>>> from tinybert_tf.task_data import TaskDataOptions, load_task_data
>>> task = load_task_data(TaskDataOptions(max_train_examples=50,
...                                       max_eval_examples=20))
>>> task.name, len(task.train), len(task.dev), len(task.test)
('bbc_news', 50, 20, 20)
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class TaskDataOptions:
    """Where a task's data comes from, and how much of it is used.

    Args:
        task: "bbc_news" (default, None), "bbc_news_titles" (its titles)
            or a GLUE task name; with
            `train_file`, the name of the task.
        task_name: the name of a task from files (default: `task`, else
            the train file's stem or folder, `tasks.load_files`).
        tfds_data_dir, tfds_download, test_fraction: GLUE through TFDS
            (`tasks.load_glue`).
        train_file, dev_file, test_file, text_column, text_pair_column,
            label_column, regression, dev_fraction: the user's files
            (`tasks.load_files`).
        max_train_examples, max_eval_examples: caps on train and on each
            evaluation split (a seeded random subset).
        split_seed: of the splits made here and of the caps (not the
            training seed: runs of several seeds share dev and test).
    """

    task: str | None = None
    task_name: str | None = None
    tfds_data_dir: str | None = None
    tfds_download: bool = True
    test_fraction: float = 0.0
    train_file: str | None = None
    dev_file: str | None = None
    test_file: str | None = None
    text_column: str = "text"
    text_pair_column: str | None = None
    label_column: str = "label"
    regression: bool = False
    dev_fraction: float = 0.1
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    split_seed: int = 0

    @classmethod
    def from_mapping(cls, values):
        """The options named in `values` (e.g. a run's recorded arguments);
        other keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(values).items() if k in names})


def load_task_data(options=TaskDataOptions()):
    """The task's raw splits (`tasks.TaskData`), capped as `options` ask."""
    from tinybert_tf import tasks
    o = options
    if o.train_file:
        task = tasks.load_files(
            o.train_file, o.dev_file, o.test_file, text_column=o.text_column,
            text_pair_column=o.text_pair_column, label_column=o.label_column,
            regression=o.regression, dev_fraction=o.dev_fraction,
            seed=o.split_seed,
            name=o.task_name or o.task)
    elif o.dev_file or o.test_file:
        raise ValueError("--dev-file/--test-file need --train-file.")
    elif o.task in (None, "bbc_news", "bbc_news_titles"):
        task = tasks.load_bbc_news(seed=o.split_seed,
                                   titles=o.task == "bbc_news_titles")
    else:
        task = _load_glue(tasks, o)
    limit = o.max_eval_examples
    task.train = _cap(task.train, o.max_train_examples, o.split_seed)
    task.dev = _cap(task.dev, limit, o.split_seed)
    task.test = _cap(task.test, limit, o.split_seed)
    task.extra_dev = {k: _cap(v, limit, o.split_seed)
                      for k, v in task.extra_dev.items()}
    return task


def _load_glue(tasks, o):
    name = o.task.lower().removeprefix("glue/")
    if name not in tasks.GLUE_TASKS:
        raise ValueError(
            f"Unknown task {o.task!r}. Known tasks: 'bbc_news' (default), "
            "'bbc_news_titles' (its titles only) and "
            f"the GLUE tasks {sorted(tasks.GLUE_TASKS)}; or give your own "
            "files with --train-file.")
    try:
        return tasks.load_glue(name, data_dir=o.tfds_data_dir,
                               download=o.tfds_download,
                               test_fraction=o.test_fraction,
                               seed=o.split_seed)
    except (ValueError, FileNotFoundError, ImportError):
        raise
    except Exception as error:  # TFDS raises its own error types
        raise OSError(
            f"Could not load GLUE task {name!r} through TFDS "
            f"({type(error).__name__}: {error}). Offline, prepare it "
            "elsewhere and pass its folder with --tfds-data-dir.") from error


def _cap(split, limit, seed):
    import numpy as np
    if split is None or limit is None or len(split) <= limit:
        return split
    return split.take(np.random.default_rng(seed).permutation(len(split))[:limit])
