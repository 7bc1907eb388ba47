"""General distillation: a pre-trained teacher into a small student on text.

With no arguments it distils the real pre-trained MiniLM (6L/384) into the
default 3-layer student on the real English text that installs offline: the
Wikipedia excerpt and Lee news corpus that gensim ships and the BBC News
train articles (`--into-cache`: the student trainers.task starts from):

    python -m trainers.general
    python -m trainers.general --teacher bert-base-uncased \
        --student tinybert-4l-312d --corpus wiki.txt.bz2 --epochs 3 \
        --strategy mirrored --precision mixed_float16

Outputs under --output-dir: student/ (project checkpoint incl. projections),
report.json, logs/ (CSV + TensorBoard), backup/ while running (resume state).
"""

import math
import os
import sys
import time

from tinybert_tf import console, files
from trainers import common
from trainers.general_flags import (OUTPUTS, RUN_ONLY_FLAGS, check_counts,
                                    parse_args)



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
