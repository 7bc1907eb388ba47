"""General distillation: a pre-trained teacher into a small student on text.

With no arguments it distils the real pre-trained MiniLM (6L/384) into the
default 3-layer student on the Wikipedia excerpt and Lee news corpus that
gensim ships:

    python -m trainers.general
    python -m trainers.general --teacher bert-base-uncased \
        --student tinybert-4l-312d --corpus wiki.txt.bz2 --epochs 3 \
        --strategy mirrored --precision mixed_float16

Outputs under --output-dir: student/ (project checkpoint incl. projections),
report.json, logs/ (CSV + TensorBoard), backup/ while running (resume state).
"""

import argparse
import math
import os
import sys
import time

from tinybert_tf import console, files
from trainers import common

# Defaults of the flags left unset. "paper": the paper's set-up and every
# behaviour of the official general_distill.py (docs/fidelity.md).
RECIPES = {
    "fast": dict(epochs=3.0, learning_rate=1e-3, optimizer="adamw",
                 clip_mode="global", teacher_dropout=False),
    "paper": dict(epochs=3.0, learning_rate=5e-5, optimizer="bertadam",
                  clip_mode="per_tensor", teacher_dropout=True),
}
RECIPES["official"] = RECIPES["paper"]  # general_distill.py has no known bug


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m trainers.general",
        description="TinyBERT general distillation (attention + hidden-state "
                    "losses, pre-trained teacher, plain text).")
    p.add_argument("--teacher", default=None,
                   help="HF directory, hub id, keras-hub preset or project "
                        "checkpoint (default: the offline MiniLM).")
    p.add_argument("--student", default=common.STUDENT_DEFAULT,
                   help="model preset name, config .json, or a checkpoint "
                        "directory to continue from (default %(default)s).")
    p.add_argument("--corpus", nargs="*", default=None,
                   help="text files (.txt/.gz/.bz2, Wikipedia .xml.bz2) or "
                        "bbc_news:train (the BBC News train articles); "
                        "default: gensim's Wikipedia excerpt + Lee news + "
                        "bbc_news:train.")
    p.add_argument("--doc-format", default="auto", choices=("auto", "line", "blank"))
    p.add_argument("--tfds-dataset", default=None,
                   help="a TFDS text dataset instead of files, e.g. "
                        "wikipedia/20230601.en (feature --tfds-text-key).")
    p.add_argument("--tfds-text-key", default="text")
    p.add_argument("--max-documents", type=int, default=None)
    p.add_argument("--sequence-length", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32, help="global batch")
    p.add_argument("--recipe", default="fast", choices=sorted(RECIPES),
                   help="defaults of the flags below: " + "; ".join(
                       f"{name}: " + ", ".join(f"{k}={v}" for k, v in
                                               values.items())
                       for name, values in RECIPES.items()))
    p.add_argument("--epochs", type=float, default=None)
    p.add_argument("--steps", type=int, default=None,
                   help="total steps (overrides --epochs; >= 1)")
    p.add_argument("--save-every", type=int, default=100,
                   help="steps between checkpoints/backups (one Keras epoch)")
    p.add_argument("--learning-rate", type=float, default=None,
                   help="peak of the warm-up + linear decay (the paper: 5e-5 "
                        "over 3 epochs of Wikipedia; 1e-3 suits short runs "
                        "such as the embedded one, docs/demo.md)")
    p.add_argument("--warmup", type=float, default=0.1, help="fraction of steps")
    common.add_optimization_flags(p)
    common.add_distillation_flags(p)
    common.add_run_flags(p, "outputs/general",
                         "replace a finished run in --output-dir")
    p.add_argument("--into-cache", action="store_true",
                   help="make the student in the cache of general students "
                        "(where trainers.task finds its default student) "
                        "instead of --output-dir; a finished one there is "
                        "reused")
    p.add_argument("--tpu", default=None)
    p.add_argument("--jit-compile", default="auto", choices=("auto", "true", "false"))
    p.add_argument("--cache-dir", default=None,
                   help="tokenized corpus cache (default ~/.cache/tinybert_tf)")
    args = p.parse_args(argv)
    return common.fill_from_recipe(args, RECIPES[args.recipe])


def check_counts(args):
    """Refuses flag values that cannot make a run (`--steps 0` included),
    an unknown --student and missing --corpus files, naming the flag."""
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps {args.steps}: a run needs at least one "
                         "step (leave --steps out to use --epochs).")
    common.check_flags(
        args, positive=("epochs", "learning_rate"),
        # [CLS] A [SEP] B [SEP] with two word-pieces at least
        at_least={"save_every": 1, "batch_size": 1, "sequence_length": 5,
                  "max_documents": 1},
        non_negative=("weight_decay", "clip_norm"), fractions=("warmup",))
    common.check_student(args.student)
    from tinybert_tf.assets import BBC_NEWS_TRAIN
    files_only = argparse.Namespace(corpus=[
        c for c in args.corpus or [] if c != BBC_NEWS_TRAIN])
    common.check_files(files_only, ("corpus",))


# Flags that do not change what a run computes: a resumed run may differ.
RUN_ONLY_FLAGS = ("output_dir", "overwrite", "verbose", "strategy", "tpu",
                  "jit_compile", "cache_dir", "into_cache")
OUTPUTS = ("student", "report.json", "logs", "backup", "backup.old",
           "run.json")


def run(args):
    if args.into_cache:
        from tinybert_tf.general_students import cache_dir, finished_student
        args.output_dir = cache_dir(args)
        found = finished_student(args.output_dir)
        if found and not args.overwrite:
            print(f"The general-distilled student of these flags is cached "
                  f"in {found} (made earlier).")
            return 0
    return common.run_owning_output(args, distil)


def distil(args, chief):
    import keras

    from tinybert_tf import assets, checkpoint, students
    from tinybert_tf.callbacks import (StepLog, StopAtStep, StudentCheckpoint,
                                       guarded)
    from tinybert_tf.corpus import build_cache, cache_info, make_dataset
    from tinybert_tf.distribute import make_strategy, set_precision
    from tinybert_tf.optimizers import make_optimizer
    from tinybert_tf.resume import TrainingBackup
    from tinybert_tf.schedules import WarmupLinearDecay

    record = common.prepare_output(args, OUTPUTS, RUN_ONLY_FLAGS, chief,
                                   "the finished run")
    keras.utils.set_random_seed(args.seed)
    set_precision(args.precision)
    strategy = make_strategy(args.strategy, args.tpu)
    started = time.time()

    teacher_source, teacher_ckpt, tokenizer = students.read_teacher(
        args.teacher, args.sequence_length)
    sources = ([f"tfds:{args.tfds_dataset}"] if args.tfds_dataset
               else args.corpus or assets.default_corpus())
    cache = build_cache(sources, tokenizer, args.cache_dir, args.doc_format,
                        seed=args.seed, max_documents=args.max_documents)
    corpus = cache_info(cache)
    steps_per_pass = corpus["sequences"] // args.batch_size
    if steps_per_pass == 0:
        raise ValueError(f"The corpus has {corpus['sequences']} sequences, "
                         f"fewer than one batch of {args.batch_size}.")
    total_steps = (args.steps if args.steps is not None
                   else max(1, int(args.epochs * steps_per_pass)))
    # Keras epochs of `chunk` steps, the last one cut at `total_steps`.
    chunk = min(args.save_every, total_steps)
    chunks = math.ceil(total_steps / chunk)

    with strategy.scope():
        teacher = checkpoint.load_backbone(teacher_ckpt)
        student, student_ckpt, _ = students.make_student(
            args.student, teacher.config, vocabulary=tokenizer.vocabulary)
        distiller = common.distillation_options(args).distiller(
            teacher, student, "intermediate")
        if student_ckpt is not None:
            distiller.load_projections(student_ckpt)
        schedule = WarmupLinearDecay(args.learning_rate, total_steps,
                                     int(args.warmup * total_steps))
        jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
        distiller.compile(optimizer=make_optimizer(
            schedule, args.optimizer, args.weight_decay, args.clip_norm,
            args.clip_mode), jit_compile=jit)

    print(distiller.describe())
    print(f"Teacher {teacher_source}: {teacher.count_params():,} parameters; "
          f"student: {student.count_params():,} "
          f"({student.count_params() / teacher.count_params():.1%}).")
    print(f"{corpus['sequences']} sequences, {total_steps} steps of "
          f"{args.batch_size}, a checkpoint every {chunk} steps and at the "
          f"end ({chunks} in all), {strategy.num_replicas_in_sync} "
          f"replica(s), {args.precision}.")

    backup = TrainingBackup(os.path.join(args.output_dir, "backup"), chief)
    with strategy.scope():
        resumed_epochs = backup.restore(distiller)
    resumed_steps = resumed_epochs * chunk
    if resumed_steps:
        print(f"Resumed from {backup.directory} after step {resumed_steps}.")
    dataset = make_dataset(cache, args.batch_size, seed=args.seed, repeat=True)
    dataset = dataset.skip(resumed_steps)
    logs = os.path.join(args.output_dir, "logs")
    student_dir = os.path.join(args.output_dir, "student")
    extras = {"stage": "general", "teacher": str(teacher_source)}
    csv_log = keras.callbacks.CSVLogger(
        os.path.join(logs, "training_log.csv"), append=True)
    callbacks = [
        *guarded("general"),
        StopAtStep(total_steps),
        StudentCheckpoint(student_dir, tokenizer.vocabulary, extras, enabled=chief),
        backup,
    ]
    if chief:
        record.write()
        os.makedirs(logs, exist_ok=True)
        callbacks += [
            csv_log,
            StepLog(os.path.join(logs, "steps.csv"), every=max(1, chunk // 10)),
            keras.callbacks.TensorBoard(os.path.join(logs, "tensorboard"),
                                        update_freq=max(1, chunk // 10))]
    fit_started = time.time()
    try:
        history = distiller.fit(dataset, epochs=chunks, steps_per_epoch=chunk,
                                initial_epoch=resumed_epochs,
                                callbacks=callbacks, shuffle=False,
                                verbose=console.fit_verbose())
    finally:  # Keras leaves the CSV log open when fit is interrupted
        if getattr(csv_log, "csv_file", None) is not None:
            csv_log.csv_file.close()
    fit_seconds = time.time() - fit_started
    final = {k: float(v[-1]) for k, v in history.history.items()}
    steps = int(distiller.optimizer.iterations.numpy())
    report = {
        "stage": "general",
        "arguments": vars(args),
        "teacher": {"source": str(teacher_source),
                    "config": teacher.config.to_dict(),
                    "parameters": teacher.count_params()},
        "student": {"source": args.student, "config": student.config.to_dict(),
                    "parameters": student.count_params(),
                    "checkpoint": student_dir},
        "mapping": distiller.mapping.to_dict(),
        "corpus": {k: corpus[k] for k in ("documents", "sequences",
                                          "padding_fraction")} | {"cache": cache},
        "steps": steps,
        "learning_rate_schedule": {
            **schedule.get_config(),
            "last_step_learning_rate": float(schedule(steps - 1))},
        "replicas": strategy.num_replicas_in_sync,
        "precision": args.precision,
        "final_losses": final,
        "wall_time_s": time.time() - started,
        "train_time_s": fit_seconds,
        "examples_per_s": (steps - resumed_steps) * args.batch_size / fit_seconds,
    }
    if chief:
        files.write_json(os.path.join(args.output_dir, "report.json"), report)
        backup.finished()
        print(f"Student saved to {student_dir}; report "
              f"{os.path.join(args.output_dir, 'report.json')}")
        print("Final losses: " + ", ".join(
            f"{k} {v:.4f}" for k, v in final.items() if not k[-1].isdigit()))
    return 0


def main(argv=None):
    return console.run_main(parse_args,
                            common.checked(check_counts, run), argv)


if __name__ == "__main__":
    sys.exit(main())
