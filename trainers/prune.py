"""Structured pruning of a task-distilled student, recovered by distillation.

    python -m trainers.prune --student outputs/task/student \\
        --teacher outputs/task/teacher --heads-keep 0.67 --ffn-keep 0.5
    python -m trainers.prune --student S --teacher T --params-keep 0.4 --rounds 2
    python -m trainers.prune --student S --teacher T --train-file train.csv \\
        --text-column review --label-column stars --ffn-keep 384

Scores every attention head and FFN neuron of --student by gradient-based
importance on the training data (Michel et al. 2019), removes the least
important ones (smaller weight matrices; a layer may lose every head),
then recovers by TinyBERT distillation from --teacher (its fine-tuned
teacher): step 1 (embedding, attention on the remaining heads, hidden
states), step 2 (prediction layer, best on dev). Targets: --heads-keep /
--ffn-keep as a fraction (0.5) or a count (24) of the unpruned student's,
or --params-keep of its non-embedding parameters. Method and measurements:
docs/pruning.md.

Outputs under --output-dir: student/ (a project checkpoint, exportable by
`python -m export.tflite`), prune_report.json (what was removed per layer,
scores before pruning, after pruning and after recovery, parameters).
"""

import argparse
import os
import sys

from tinybert_tf import console, files
from trainers import common

OUTPUTS = ("student", "prune_report.json")


def parse_args(argv=None):
    from tinybert_tf.task_distillation import QUICK
    p = argparse.ArgumentParser(
        prog="python -m trainers.prune",
        description="Remove attention heads and FFN neurons from a "
                    "task-distilled student, then recover it by distillation "
                    "from its teacher.")
    models = p.add_argument_group("models")
    models.add_argument("--student", required=True,
                        help="task-distilled student checkpoint "
                             "(trainers.task's OUTPUT/student)")
    models.add_argument("--teacher", required=True,
                        help="its fine-tuned teacher (trainers.task's "
                             "OUTPUT/teacher)")
    common.add_task_data_flags(p.add_argument_group("data (as trainers.task)"))

    target = p.add_argument_group("target")
    target.add_argument("--heads-keep", default=None,
                        help="attention heads to keep, all layers together: "
                             "a fraction (0.67) or a count (24)")
    target.add_argument("--ffn-keep", default=None,
                        help="FFN neurons to keep, all layers together: a "
                             "fraction (0.5) or a count (1152)")
    target.add_argument("--params-keep", default=None,
                        help="instead: non-embedding parameters to keep, a "
                             "fraction or a count (heads and neurons cut in "
                             "the same proportion)")
    target.add_argument("--rounds", type=int, default=1,
                        help="score, remove and recover this many times "
                             "(targets interpolated)")
    target.add_argument("--importance-batches", type=int, default=None,
                        help="training batches the importance scores see "
                             "(default: all)")

    train = p.add_argument_group("recovery (defaults: the fast recipe)")
    train.add_argument("--recovery", action=argparse.BooleanOptionalAction,
                       default=True, help="distil the pruned student from "
                       "the teacher (--no-recovery: pruning alone)")
    train.add_argument("--quick", action="store_true",
                       help="trainers.task's quick settings: " + ", ".join(
                           f"{k}={v}" for k, v in QUICK.items()
                           if k in ("intermediate_epochs",
                                    "prediction_epochs", "eval_every")))
    train.add_argument("--batch-size", type=int, default=None)
    train.add_argument("--intermediate-epochs", type=int, default=None,
                       help="step 1 epochs (0 skips step 1)")
    train.add_argument("--intermediate-lr", type=float, default=None)
    train.add_argument("--prediction-epochs", type=int, default=None)
    train.add_argument("--prediction-lr", type=float, default=None)
    train.add_argument("--eval-every", type=int, default=None,
                       help="dev evaluation every N steps (0: each epoch)")
    common.add_distillation_flags(p.add_argument_group("distillation"),
                                  prediction=True)

    run = p.add_argument_group("run")
    run.add_argument("--output-dir", default="outputs/pruned")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the student and prune_report.json of a "
                          "finished run")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--quiet", action="store_true")
    console.add_verbose_flag(run)
    return p.parse_args(argv)


def recovery_config(args):
    """The `TaskDistillationConfig` of the recovery: the fast recipe,
    --quick's epochs on top, then the flags given."""
    from tinybert_tf.task_distillation import TaskDistillationConfig
    overrides = {name: getattr(args, name) for name in (
        "batch_size", "intermediate_epochs", "intermediate_lr",
        "prediction_epochs", "prediction_lr", "eval_every")
        if getattr(args, name) is not None}
    return TaskDistillationConfig.recipe("fast", quick=args.quick,
                                         seed=args.seed, **overrides)


def prune_options(args):
    from tinybert_tf.pruning import PruneOptions, parse_keep
    keeps = {name: None if getattr(args, name) is None
             else parse_keep(getattr(args, name), "--" + name.replace("_", "-"))
             for name in ("heads_keep", "ffn_keep", "params_keep")}
    return PruneOptions(rounds=args.rounds,
                        importance_batches=args.importance_batches,
                        recovery=recovery_config(args) if args.recovery
                        else None, **keeps)


def _checkpoint_dir(path, flag):
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{flag} {path}: no such checkpoint "
                                "directory.")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise FileNotFoundError(f"{flag} {path}: not a checkpoint (no "
                                "config.json).")


def check_args(args):
    """Every check the flags alone allow, before TensorFlow is loaded."""
    _checkpoint_dir(args.student, "--student")
    _checkpoint_dir(args.teacher, "--teacher")
    if not (args.heads_keep or args.ffn_keep or args.params_keep):
        raise ValueError("Give a target: --heads-keep, --ffn-keep or "
                         "--params-keep.")
    common.check_flags(
        args, positive=("intermediate_lr", "prediction_lr", "temperature"),
        at_least={"batch_size": 1, "rounds": 1, "importance_batches": 1,
                  "prediction_epochs": 1, "sequence_length": 3,
                  "max_train_examples": 1, "max_eval_examples": 1},
        non_negative=("intermediate_epochs", "eval_every"),
        fractions=("dev_fraction", "test_fraction"))
    common.check_files(args, ("train_file", "dev_file", "test_file"))
    prune_options(args)  # the targets parse (messages name the flag)
    output = os.path.realpath(args.output_dir)
    for flag, path in (("--student", args.student), ("--teacher", args.teacher)):
        inside = os.path.realpath(path)
        if output == inside or inside.startswith(output + os.sep):
            raise ValueError(f"--output-dir {args.output_dir} holds {flag} "
                             f"{path}: choose another folder.")
    common.guard_output(args.output_dir, OUTPUTS, args.overwrite,
                        "the pruned student and its report")


def run(args):
    return common.run_owning_output(args, prune)


def load_models(args, say):
    """(task, tokenizer, teacher, student, student Checkpoint), checked
    against each other."""
    from tinybert_tf import checkpoint, students
    from tinybert_tf import task_distillation as td
    from tinybert_tf.task_data import TaskDataOptions, load_task_data
    task = load_task_data(TaskDataOptions.from_mapping(vars(args)))
    student_ckpt = checkpoint.read(args.student)
    if "classifier.weight" not in student_ckpt.weights:
        raise ValueError(f"--student {args.student} has no classifier head: "
                         "prune a task-distilled student (trainers.task).")
    length = (args.sequence_length
              or student_ckpt.extras.get("sequence_length")
              or td.default_sequence_length(task))
    _, teacher_ckpt, tokenizer = students.read_teacher(args.teacher, length)
    teacher = students.load_fine_tuned_teacher(
        teacher_ckpt, task.num_labels, task.label_names)
    student, _, _ = students.make_student(
        args.student, teacher_ckpt.config, task.num_labels,
        label_names=task.label_names, vocabulary=tokenizer.vocabulary)
    say(f"Task {task.name}: {len(task.train)} train, {len(task.dev)} dev, "
        f"{'no' if task.test is None else len(task.test)} test examples; "
        f"sequence length {length}.")
    return task, tokenizer, teacher, student, student_ckpt


def prune(args, chief):
    import keras

    from tinybert_tf import checkpoint, pruning
    from tinybert_tf import task_distillation as td
    from tinybert_tf.teacher_outputs import TeacherLogits

    say = (lambda *a: None) if args.quiet else (
        lambda *a: print(*a, flush=True))
    keras.utils.set_random_seed(args.seed)
    clock = common.Stopwatch()
    options = prune_options(args)
    with clock.stage("data"):
        task, tokenizer, teacher, student, student_ckpt = load_models(args, say)
    inputs = td.TaskInputs(task, tokenizer, options.recovery.batch_size
                           if options.recovery else 32, args.seed,
                           bucketing=True)
    projections = {k: v for k, v in student_ckpt.weights.items()
                   if k.startswith("fit_dense")} or None
    say(f"Student {args.student}: {student.count_params():,} parameters, "
        f"{student.config.non_embedding_parameters():,} in its Transformer "
        "layers.")
    logits = TeacherLogits(teacher, tokenizer)
    with clock.stage("prune"):
        result = pruning.prune_and_recover(
            teacher, student, inputs, options,
            common.distillation_options(args), projections=projections,
            say=say, teacher_logits=logits)
    report = result.report(student)
    report.update(task=task.name, student=args.student, teacher=args.teacher,
                  primary_metric=task.select_metric,
                  teacher_scores=inputs.scores(teacher, logits),
                  wall_time_s=clock.report(), arguments=vars(args),
                  latency="python -m export.tflite on OUT/student, then "
                          "benchmarks/tflite_speed.py (docs/pruning.md)")
    if chief:
        paths = {name: os.path.join(args.output_dir, name) for name in OUTPUTS}
        extras = dict(student_ckpt.extras)
        for key in ("num_labels", "head", "pooling", "label_names"):
            extras.pop(key, None)  # written from the model by save
        extras.update(stage="pruned", pruned_from=args.student)
        checkpoint.save(result.student, paths["student"], tokenizer.vocabulary,
                        extra_weights=result.projections, extras=extras,
                        overwrite=args.overwrite)
        files.write_json(paths["prune_report.json"], report)
        say(f"Pruned student saved to {paths['student']}; report "
            f"{paths['prune_report.json']}.")
    say(summary(report))
    return 0


def summary(report):
    """One line: the primary metric before, after pruning, after recovery,
    and the non-embedding parameters."""
    metric = report["primary_metric"]
    scores = report["scores"]
    split = "test" if "test" in scores["before_pruning"] else "dev"

    def value(name):
        values = scores[name]
        return "n/a" if values is None else f"{values[split][metric]:.4f}"
    params = report["parameters"]
    return (f"{split} {metric}: {value('before_pruning')} before, "
            f"{value('after_pruning')} after pruning, "
            f"{value('after_recovery')} after recovery; non-embedding "
            f"parameters {params['non_embedding_before']:,} -> "
            f"{params['non_embedding_after']:,}.")


def main(argv=None):
    return console.run_main(parse_args, common.checked(check_args, run), argv)


if __name__ == "__main__":
    sys.exit(main())
