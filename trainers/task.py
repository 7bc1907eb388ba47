"""Task-specific distillation: fine-tuned teacher -> small student on a task.

With no arguments it fine-tunes the real pre-trained MiniLM (6L/384) on BBC
News topic classification, then distils it into the 3-layer student
(tinybert-3l-192d, general-distilled: made once by trainers.general and
cached) in TinyBERT's two steps, and fine-tunes the same student directly on
the labels for comparison:

    python -m trainers.task                      # embedded default (CPU, ~40 min)
    python -m trainers.task --quick --student random   # a few minutes
    python -m trainers.task --task sst2 --tfds-data-dir ~/tensorflow_datasets \
        --recipe paper --augment --aug-mlm bert-base-uncased
    python -m trainers.task --train-file train.csv --dev-file dev.csv \
        --test-file test.csv --text-column review --label-column stars

Steps:
  0. the student: --student general finds the general-distilled student
     in the cache (tinybert_tf.general_students) or runs trainers.general;
  1. teacher: the pre-trained --teacher fine-tuned on the labels (AdamW,
     warm-up + linear decay, best on dev kept) and saved to OUTPUT/teacher,
     which a later run reuses; or --fine-tuned-teacher DIR used as is;
  2. data augmentation of the train texts (tinybert_tf.augment; --no-augment
     turns it off);
  3. step 1: embedding + attention + hidden-state losses on the (augmented)
     train data, constant learning rate;
  4. step 2: prediction-layer loss (soft cross-entropy on the teacher's
     logits), warm-up + decay, dev every --eval-every steps, best kept;
  5. (--baseline) the same student, from the same initial weights, trained
     on the labels of the same train data, as many epochs as steps 1 + 2.

Outputs under --output-dir: teacher/, student/ (project checkpoints with the
label names), report.json (metrics, retention, parameters, the student's
start, wall time per stage, augmentation counts, baseline).
"""

import argparse
import os
import sys

from tinybert_tf import console, files
from trainers import common, general_flags


def parse_args(argv=None):
    from tinybert_tf.choices import (CLASSIFIER_HEADS, METRICS, POOLINGS,
                                     REGRESSION_TARGETS)
    from tinybert_tf.students import LABEL_MAPPINGS
    from tinybert_tf.task_distillation import LENGTH_SETTINGS, QUICK, RECIPES
    p = argparse.ArgumentParser(
        prog="python -m trainers.task",
        description="TinyBERT task-specific distillation: fine-tune a teacher"
                    ", distil it into a student (intermediate layers, then "
                    "prediction layer), compare with direct fine-tuning.")
    common.add_task_data_flags(p.add_argument_group("data"))

    models = p.add_argument_group("models")
    models.add_argument("--teacher", default=None,
                        help="pre-trained teacher to fine-tune: HF directory, "
                             "hub id, keras-hub preset or project checkpoint "
                             "(default: the offline MiniLM)")
    models.add_argument("--fine-tuned-teacher", default=None,
                        help="an already fine-tuned teacher checkpoint to use")
    models.add_argument("--label-mapping", default=None,
                        choices=LABEL_MAPPINGS,
                        help="match a fine-tuned teacher's classes to the "
                             "task's by name (refusing other names), or take "
                             "them in index order as the official code "
                             "(its MNLI bug, issue #229)")
    models.add_argument("--retrain-teacher", action="store_true",
                        help="fine-tune again although OUTPUT/teacher exists "
                             "(needs --overwrite)")
    models.add_argument("--student", default="general",
                        help="'general' (default): the general-distilled "
                             "--student-preset of the teacher, from the cache"
                             " or made there once by trainers.general; "
                             "'random'; a checkpoint directory (projections "
                             "reused), a preset name or a config .json")
    models.add_argument("--student-preset", default=common.STUDENT_DEFAULT,
                        help="architecture of --student general/random")
    models.add_argument("--general-args", default="", metavar="FLAGS",
                        help="extra trainers.general flags for --student "
                             "general (another key in the cache)")
    models.add_argument("--head", default="tanh_relu", choices=CLASSIFIER_HEADS,
                        help="classifier head of new heads (official: tanh_relu)")
    models.add_argument("--pooling", default=None, choices=POOLINGS,
                        help="what the student's new head reads: the [CLS] "
                             "state (official; paper recipe) or the mean of "
                             "the token states (fast recipe); the teacher's "
                             "head is always [CLS]")

    train = p.add_argument_group("training (defaults from --recipe)")
    train.add_argument("--recipe", default="fast", choices=sorted(RECIPES),
                       help="fast: CPU-sized; paper: the paper's settings "
                            "and the official code's behaviours, its bugs "
                            "fixed; official: paper with those bugs "
                            "(docs/fidelity.md)")
    train.add_argument("--quick", action="store_true",
                       help="a few-minute run: " + ", ".join(
                           f"{k}={v}" for k, v in QUICK.items()))
    train.add_argument("--batch-size", type=int, default=None)
    train.add_argument("--teacher-epochs", type=int, default=None)
    train.add_argument("--teacher-lr", type=float, default=None)
    train.add_argument("--intermediate-epochs", type=int, default=None,
                       help="step 1 epochs (0 skips step 1; fast recipe: 1 "
                            "up to 64 word-pieces, else 2)")
    train.add_argument("--intermediate-lr", type=float, default=None,
                       help="step 1 constant learning rate")
    train.add_argument("--prediction-epochs", type=int, default=None,
                       help="step 2 epochs (fast recipe: 1 up to 64 "
                            "word-pieces, else 3)")
    train.add_argument("--prediction-lr", type=float, default=None)
    train.add_argument("--warmup", type=float, default=None,
                       help="warm-up fraction (teacher, step 2, baseline)")
    common.add_optimization_flags(train)
    train.add_argument("--drop-remainder", action=argparse.BooleanOptionalAction,
                       default=None, help="drop the last partial training "
                       "batch, as the official code (paper recipe)")
    train.add_argument("--bucketing", action=argparse.BooleanOptionalAction,
                       default=None, help="batches of similar lengths, padded"
                       " to their longest (fast recipe; the official code "
                       "pads to --sequence-length)")
    train.add_argument("--teacher-cache", action=argparse.BooleanOptionalAction,
                       default=True, help="compute the teacher's logits once "
                       "(step 2 runs the student alone; kept under "
                       "$TINYBERT_TF_CACHE); off with --teacher-dropout")
    train.add_argument("--eval-every", type=int, default=None,
                       help="evaluate on dev every N steps (0: each epoch)")
    train.add_argument("--select-metric", default=None, choices=METRICS,
                       help="the dev metric that selects the best step "
                            "(default: the task's official one, e.g. accuracy"
                            " for MRPC/QQP, corr for STS-B); all are reported")
    train.add_argument("--intermediate-stage", default="intermediate",
                       choices=("intermediate", "all"),
                       help="step 1 trains the embedding, attention and "
                            "hidden losses (TinyBERT), or all of them with "
                            "the prediction loss weighted by the 4th "
                            "--loss-weights number")
    train.add_argument("--baseline", action=argparse.BooleanOptionalAction,
                       default=True, help="also train the same student "
                                          "directly on the labels of the "
                                          "same (augmented) train data")
    train.add_argument("--baseline-epochs", type=int, default=None,
                       help="default: step 1 + step 2 epochs")
    train.add_argument("--baseline-lr", type=float, default=None)

    distillation = common.add_distillation_flags(
        p.add_argument_group("distillation"), prediction=True)
    distillation.add_argument(
        "--regression-target", default=None, choices=REGRESSION_TARGETS,
        help="what a regression student's prediction layer learns: the "
             "teacher's outputs (the paper), or the gold labels (the official"
             " code's bug, issue #128)")

    aug = p.add_argument_group("data augmentation")
    aug.add_argument("--augment", action=argparse.BooleanOptionalAction,
                     default=None, help="augment the train texts (on in "
                                        "both recipes)")
    aug.add_argument("--aug-n", type=int, default=None,
                     help="samples per example (fast: 20 for texts of at "
                          "most 64 word-pieces, 4 for longer; paper: the "
                          "official N of a GLUE task)")
    aug.add_argument("--aug-p", type=float, default=0.4,
                     help="replacement probability p_t")
    aug.add_argument("--aug-k", type=int, default=15, help="candidates K")
    aug.add_argument("--aug-mlm", default=None,
                     help="masked-LM checkpoint (a BertForMaskedLM); without "
                          "one, GloVe neighbours only")
    aug.add_argument("--aug-glove", default=None,
                     help="GloVe vectors (default: the offline GloVe 6B 50d)")
    aug.add_argument("--aug-cache-dir", default=None,
                     help="augmentation cache (default: tinybert_tf.augment's, "
                          "shared by runs)")

    run = p.add_argument_group("run")
    common.add_run_flags(run, "outputs/task", "replace the student and report"
                         " of a finished run")
    run.add_argument("--quiet", action="store_true")
    # Unset flags come from --quick, then --recipe, but those the fast recipe
    # takes from the sequence length (fill_length_settings).
    args = p.parse_args(argv)
    defaults = {k: v for k, v in RECIPES[args.recipe].items()
                if args.recipe != "fast" or k not in LENGTH_SETTINGS["long"]}
    return common.fill_from_recipe(args, {**defaults, **(
        QUICK if args.quick else {})})


def fill_length_settings(args, sequence_length):
    """The fast recipe's settings for `sequence_length`, where still unset."""
    from tinybert_tf.task_distillation import fast_length_settings
    if args.recipe == "fast":
        common.fill_from_recipe(args, fast_length_settings(sequence_length))
    return args


# What a run writes besides teacher/, and the flags a resumed run may change.
OUTPUTS = ("student", "report.json", "logs", "stages", "run.json")
RUN_ONLY_FLAGS = ("output_dir", "overwrite", "verbose", "quiet", "strategy",
                  "retrain_teacher", "aug_cache_dir", "tfds_download",
                  "teacher_cache")


def output_paths(args):
    return {name: os.path.join(args.output_dir, name)
            for name in ("teacher", "stages", *OUTPUTS)}


def check_output(args, chief=True):
    """Refuses, before any work, to replace what a user has; an unfinished
    run of the same flags resumes (a fine-tuned teacher is kept)."""
    paths = output_paths(args)
    paths["record"] = common.prepare_output(
        args, OUTPUTS, RUN_ONLY_FLAGS, chief, "the student and report (a "
        "fine-tuned teacher there is reused either way)")
    if args.retrain_teacher:
        if args.fine_tuned_teacher:
            raise ValueError("--retrain-teacher and --fine-tuned-teacher "
                             "contradict each other.")
        if os.path.exists(paths["teacher"]) and not args.overwrite:
            raise FileExistsError(
                f"--retrain-teacher would replace {paths['teacher']}; pass "
                "--overwrite too.")
    return paths


def choose_teacher(args, paths):
    """(source, status): given, reused from OUTPUT/teacher, or to fine-tune
    (source None: the offline MiniLM)."""
    if args.fine_tuned_teacher:
        return args.fine_tuned_teacher, "given"
    if os.path.isdir(paths["teacher"]) and not args.retrain_teacher:
        return paths["teacher"], "reused"
    return args.teacher, "fine-tuned"


def run(args):
    return common.run_owning_output(args, distil)


def distil(args, chief):
    import keras

    from tinybert_tf import checkpoint, students
    from tinybert_tf import task_distillation as td
    from tinybert_tf.distribute import make_strategy, set_precision
    from tinybert_tf.task_data import TaskDataOptions, load_task_data
    from tinybert_tf.teacher_outputs import TeacherLogits

    paths = check_output(args, chief)
    save = checkpoint.save if chief else (lambda *a, **k: None)
    say = None if args.quiet else (lambda *a: print(*a, flush=True))
    show = say or (lambda *a: None)
    keras.utils.set_random_seed(args.seed)
    set_precision(args.precision)
    strategy = make_strategy(args.strategy)
    clock = common.Stopwatch()

    with clock.stage("data"):
        task = load_task_data(TaskDataOptions.from_mapping(vars(args)))
    if args.select_metric:
        task.select_on(args.select_metric)
    primary = task.select_metric
    teacher_source, status = choose_teacher(args, paths)
    if status == "reused":
        show(f"Reusing the fine-tuned teacher in {paths['teacher']} (pass "
             "--retrain-teacher --overwrite to fine-tune it again).")
    teacher_source, teacher_ckpt, tokenizer = students.read_teacher(
        teacher_source, args.sequence_length
        or td.default_sequence_length(task, args.recipe))
    tokenizer, chosen = td.fit_sequence_length(task.train, tokenizer,
                                               args.sequence_length)
    length = tokenizer.sequence_length
    fill_length_settings(args, length)
    show(f"Task {task.name}: {len(task.train)} train, {len(task.dev)} dev, "
         f"{'no' if task.test is None else len(task.test)} test examples; "
         f"labels {task.label_names or 'regression'}; metric {primary}; "
         f"sequence length {length} ({chosen}).")

    student_source, start = general_flags.student_source(
        args, teacher_source if status == "fine-tuned" else teacher_ckpt,
        show, chief)
    with strategy.scope():
        # Everything is checked before the first training step.
        student, student_ckpt, student_desc = students.make_student(
            student_source, teacher_ckpt.config, task.num_labels, label_names=task.label_names,
            head=args.head, pooling=args.pooling,
            vocabulary=tokenizer.vocabulary)
        tokenizer.check_model(student.config)
        if status == "fine-tuned":
            teacher = checkpoint.load_classifier(
                teacher_ckpt, num_labels=task.num_labels,
                label_names=task.label_names or None, head=args.head)
        else:
            teacher = students.load_fine_tuned_teacher(
                teacher_ckpt, task.num_labels, task.label_names,
                args.label_mapping)
        inputs = td.TaskInputs(task, tokenizer, args.batch_size, args.seed,
                               args.drop_remainder, args.bucketing)
        steps = td.TaskDistillation(
            teacher, student, inputs, td.TaskDistillationConfig.from_mapping(
                vars(args)), common.distillation_options(args),
            log_dir=paths["logs"], say=say, stage_dir=paths["stages"],
            write=chief, teacher_logits=None if args.teacher_dropout
            or not args.teacher_cache else TeacherLogits(teacher, tokenizer))
        if chief:
            paths["record"].write()

        with clock.stage("teacher"):
            if status == "fine-tuned":
                show(f"Pre-trained teacher: {teacher_source}.")
                best = steps.fine_tune_teacher()
                save(
                    teacher, paths["teacher"], tokenizer.vocabulary,
                    extras={"stage": "task-teacher", "task": task.name,
                            "pretrained": teacher_source,
                            "sequence_length": length,
                            "best_step": best.best_step,
                            "dev": best.best_metrics},
                    overwrite=args.retrain_teacher)
                show(f"Teacher saved to {paths['teacher']}.")
        with clock.stage("teacher_eval"):
            teacher_scores = steps.teacher_scores()
        show(f"Teacher: {td.scores_line(teacher_scores, primary)}")
        show(f"Student ({student_desc}): {student.count_params():,} parameters"
             f" ({student.count_params() / teacher.count_params():.1%} of the "
             "teacher).")

        augmentation, distill_data = td.no_augmentation(task), task.train
        if args.augment:
            with clock.stage("augmentation"):
                distill_data, augmentation = td.augment_train(
                    task, length, common.augment_options(args))
            show(f"Augmentation: {augmentation['original_examples']} -> "
                 f"{augmentation['augmented_examples']} train examples.")

        # A general-distilled student's projections are kept if step 1 is
        # skipped, replaced by step 1's otherwise.
        projections = intermediate_losses = None
        if student_ckpt is not None:
            projections = {k: v for k, v in student_ckpt.weights.items()
                           if k.startswith("fit_dense")} or None
        if args.intermediate_epochs:
            with clock.stage("intermediate"):
                projections, intermediate_losses, _ = steps.intermediate_step(
                    distill_data, projections_from=student_ckpt)
        with clock.stage("prediction"):
            best_student = steps.prediction_step(distill_data)
        with clock.stage("student_eval"):
            student_scores = inputs.scores(student)
        show(f"Student: {td.scores_line(student_scores, primary)}")
        save(
            student, paths["student"], tokenizer.vocabulary,
            extra_weights=projections,
            extras={"stage": "task", "task": task.name,
                    "teacher": str(teacher_source), "student_init": student_desc,
                    "sequence_length": length, "metrics": list(task.metrics),
                    "best_step": best_student.best_step},
            overwrite=True)  # an unfinished run's, checked by check_output
        show(f"Student saved to {paths['student']}.")

        baseline = None
        if args.baseline:
            with clock.stage("baseline"):
                baseline = steps.baseline(
                    distill_data, "augmented" if args.augment else "original")
            show(f"Baseline: {td.scores_line(baseline.scores, primary)}")

    report = td.task_report(td.TaskRun(
        task, length,
        td.TeacherResult(teacher, str(teacher_source), status,
                         paths["teacher"] if status != "given"
                         else str(teacher_source), teacher_scores),
        td.StudentResult(student, student_desc, paths["student"],
                         student_scores, best_student, intermediate_losses,
                         start),
        augmentation, baseline, clock.report(), vars(args)))
    if chief:
        files.write_json(paths["report.json"], report)
        steps.finished()
    show(td.retention_line(report))
    show(f"Report: {paths['report.json']}")
    return 0


def main(argv=None):
    return console.run_main(parse_args, common.checked(check, run), argv)


def check(args):
    common.check_task_flags(args)
    general_flags.general_run_flags(args)  # --general-args can be split


if __name__ == "__main__":
    sys.exit(main())
