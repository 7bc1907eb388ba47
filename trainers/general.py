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
import json
import math
import os
import shutil
import sys
import time

STUDENT_DEFAULT = "tinybert-3l-192d"


def parse_args(argv=None):
    from tinybert_tf.distribute import DISTRIBUTION_STRATEGIES, PRECISIONS
    from tinybert_tf.layer_mapping import MAPPING_STRATEGIES
    p = argparse.ArgumentParser(
        prog="python -m trainers.general",
        description="TinyBERT general distillation (attention + hidden-state "
                    "losses, pre-trained teacher, plain text).")
    p.add_argument("--teacher", default=None,
                   help="HF directory, hub id, keras-hub preset or project "
                        "checkpoint (default: the offline MiniLM).")
    p.add_argument("--student", default=STUDENT_DEFAULT,
                   help="model preset name, config .json, or a checkpoint "
                        "directory to continue from (default %(default)s).")
    p.add_argument("--corpus", nargs="*", default=None,
                   help="text files (.txt/.gz/.bz2, Wikipedia .xml.bz2); "
                        "default: gensim's Wikipedia excerpt + Lee news.")
    p.add_argument("--doc-format", default="auto", choices=("auto", "line", "blank"))
    p.add_argument("--tfds-dataset", default=None,
                   help="a TFDS text dataset instead of files, e.g. "
                        "wikipedia/20230601.en (feature --tfds-text-key).")
    p.add_argument("--tfds-text-key", default="text")
    p.add_argument("--max-documents", type=int, default=None)
    p.add_argument("--sequence-length", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32, help="global batch")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--steps", type=int, default=None,
                   help="total steps (overrides --epochs)")
    p.add_argument("--save-every", type=int, default=100,
                   help="steps between checkpoints/backups (one Keras epoch)")
    p.add_argument("--learning-rate", type=float, default=1e-3,
                   help="peak of the warm-up + linear decay (the paper: 5e-5 "
                        "over 3 epochs of Wikipedia; 1e-3 suits short runs "
                        "such as the embedded one, docs/demo.md)")
    p.add_argument("--warmup", type=float, default=0.1, help="fraction of steps")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--clip-norm", type=float, default=1.0)
    p.add_argument("--mapping", default="uniform", choices=MAPPING_STRATEGIES)
    p.add_argument("--custom-layers", default=None,
                   help="teacher layer per student layer, e.g. 2,4,6")
    p.add_argument("--projection", default="shared", choices=("shared", "per_layer"))
    p.add_argument("--attention-loss", default="official", choices=("official", "exact"))
    p.add_argument("--hidden-loss", default="official", choices=("official", "exact"))
    p.add_argument("--loss-weights", default="1,1,1",
                   help="embedding,attention,hidden weights")
    p.add_argument("--layer-weights", default="",
                   help="per student layer, e.g. 1=0.5,3=2")
    p.add_argument("--teacher-dropout", action="store_true",
                   help="teacher in training mode, as the official script")
    p.add_argument("--strategy", default="default", choices=DISTRIBUTION_STRATEGIES)
    p.add_argument("--tpu", default=None)
    p.add_argument("--precision", default="float32", choices=PRECISIONS)
    p.add_argument("--jit-compile", default="auto", choices=("auto", "true", "false"))
    p.add_argument("--output-dir", default="outputs/general")
    p.add_argument("--cache-dir", default=None,
                   help="tokenized corpus cache (default ~/.cache/tinybert_tf)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a finished run in --output-dir")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def _student_model(source, teacher_config):
    """(student BertBackbone, checkpoint or None) from a preset/config/dir."""
    from tinybert_tf import checkpoint
    from tinybert_tf.backbone import BertBackbone
    from tinybert_tf.config import PRESETS, BertConfig
    if os.path.isdir(source):
        ckpt = checkpoint.read(source)
        return checkpoint.load_backbone(ckpt), ckpt
    if source.endswith(".json"):
        with open(source) as f:
            config = BertConfig.from_dict(json.load(f))
    elif source in PRESETS:
        config = BertConfig.from_preset(source)
    else:
        raise ValueError(f"--student {source!r} is neither a checkpoint "
                         f"directory, a config .json nor a preset "
                         f"({', '.join(sorted(PRESETS))}).")
    config = config.replace(
        vocab_size=teacher_config.vocab_size,
        max_position_embeddings=teacher_config.max_position_embeddings,
        type_vocab_size=teacher_config.type_vocab_size)
    return BertBackbone(config), None


def mapping_from_args(args, student_layers, teacher_layers):
    """The `LayerMapping` of --mapping/--custom-layers (also trainers.task)."""
    from tinybert_tf.layer_mapping import LayerMapping
    custom = None
    if args.custom_layers:
        custom = [int(x) for x in args.custom_layers.split(",")]
    return LayerMapping(student_layers, teacher_layers, args.mapping, custom)


def loss_weights_from_args(args):
    """The `LossWeights` of --loss-weights/--layer-weights (also trainers.task)."""
    from tinybert_tf.distiller import LossWeights
    try:
        parts = [float(x) for x in args.loss_weights.split(",")]
        layers = {int(m): float(w) for m, w in (
            item.split("=") for item in filter(None, args.layer_weights.split(",")))}
    except ValueError:
        raise ValueError(
            f"--loss-weights {args.loss_weights!r} / --layer-weights "
            f"{args.layer_weights!r}: expected 3 numbers embedding,attention,"
            "hidden and items layer=weight, e.g. 1=0.5,3=2.") from None
    if len(parts) != 3:
        raise ValueError(f"--loss-weights {args.loss_weights!r}: expected 3 "
                         "numbers embedding,attention,hidden.")
    return LossWeights(embedding=parts[0], attention=parts[1], hidden=parts[2],
                       layers=layers)


def _prepare_output(args):
    report = os.path.join(args.output_dir, "report.json")
    if os.path.exists(report):
        if not args.overwrite:
            raise FileExistsError(
                f"{args.output_dir} holds a finished run ({report}); pass "
                "--overwrite to replace it, or choose another --output-dir.")
        for name in ("student", "report.json", "logs", "backup"):
            path = os.path.join(args.output_dir, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
    os.makedirs(os.path.join(args.output_dir, "logs"), exist_ok=True)


def run(args):
    import keras
    import tensorflow as tf

    from tinybert_tf import assets, checkpoint
    from tinybert_tf.callbacks import StepLog, StudentCheckpoint
    from tinybert_tf.corpus import build_cache, cache_info, make_dataset
    from tinybert_tf.distiller import Distiller
    from tinybert_tf.distribute import is_chief, make_strategy, set_precision
    from tinybert_tf.losses import AttentionLoss, HiddenStateLoss
    from tinybert_tf.optimizers import make_optimizer
    from tinybert_tf.schedules import WarmupLinearDecay
    from tinybert_tf.tokenizer import BertTextTokenizer

    _prepare_output(args)
    keras.utils.set_random_seed(args.seed)
    set_precision(args.precision)
    strategy = make_strategy(args.strategy, args.tpu)
    chief = is_chief()
    started = time.time()

    teacher_source = args.teacher or assets.minilm_dir()
    teacher_ckpt = checkpoint.read(teacher_source)
    if teacher_ckpt.vocab_file is None:
        raise FileNotFoundError(f"Teacher {teacher_source} has no vocab.txt.")
    tokenizer = BertTextTokenizer(teacher_ckpt.vocab_file, args.sequence_length)
    tokenizer.check_model(teacher_ckpt.config)

    sources = ([f"tfds:{args.tfds_dataset}"] if args.tfds_dataset
               else args.corpus or assets.gensim_text_files())
    cache = build_cache(sources, tokenizer, args.cache_dir, args.doc_format,
                        seed=args.seed, max_documents=args.max_documents)
    corpus = cache_info(cache)
    steps_per_pass = corpus["sequences"] // args.batch_size
    if steps_per_pass == 0:
        raise ValueError(f"The corpus has {corpus['sequences']} sequences, "
                         f"fewer than one batch of {args.batch_size}.")
    total_steps = args.steps or max(1, int(args.epochs * steps_per_pass))
    chunk = min(args.save_every, total_steps)
    chunks = math.ceil(total_steps / chunk)

    with strategy.scope():
        teacher = checkpoint.load_backbone(teacher_ckpt)
        student, student_ckpt = _student_model(args.student, teacher.config)
        if student_ckpt is not None and student_ckpt.vocabulary() != tokenizer.vocabulary:
            raise ValueError(f"Student {args.student} and teacher "
                             f"{teacher_source} have different vocabularies.")
        distiller = Distiller(
            teacher, student,
            mapping=mapping_from_args(args, student.config.num_layers,
                             teacher.config.num_layers),
            stage="intermediate", projection=args.projection,
            loss_weights=loss_weights_from_args(args),
            attention_loss=AttentionLoss(args.attention_loss),
            hidden_loss=HiddenStateLoss(args.hidden_loss),
            teacher_training=args.teacher_dropout)
        if student_ckpt is not None:
            distiller.load_projections(student_ckpt)
        schedule = WarmupLinearDecay(args.learning_rate, total_steps,
                                     int(args.warmup * total_steps))
        jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
        distiller.compile(optimizer=make_optimizer(schedule, "adamw", args.weight_decay,
                                          args.clip_norm), jit_compile=jit)

    print(distiller.describe())
    print(f"Teacher {teacher_source}: {teacher.count_params():,} parameters; "
          f"student: {student.count_params():,} "
          f"({student.count_params() / teacher.count_params():.1%}).")
    print(f"{corpus['sequences']} sequences, {total_steps} steps of "
          f"{args.batch_size} in {chunks} checkpoints of {chunk} steps, "
          f"{strategy.num_replicas_in_sync} replica(s), {args.precision}.")

    backup_dir = os.path.join(args.output_dir, "backup")
    resumed_chunks = _resumed_epoch(backup_dir)
    if resumed_chunks:
        print(f"Resuming from {backup_dir} after step {resumed_chunks * chunk}.")
    dataset = make_dataset(cache, args.batch_size, seed=args.seed, repeat=True)
    dataset = dataset.skip(resumed_chunks * chunk)
    logs = os.path.join(args.output_dir, "logs")
    student_dir = os.path.join(args.output_dir, "student")
    extras = {"stage": "general", "teacher": str(teacher_source)}
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        StudentCheckpoint(student_dir, tokenizer.vocabulary, extras, enabled=chief),
        keras.callbacks.BackupAndRestore(backup_dir),
        keras.callbacks.CSVLogger(os.path.join(logs, "training_log.csv"),
                                  append=True),
        StepLog(os.path.join(logs, "steps.csv"), every=max(1, chunk // 10)),
        keras.callbacks.TensorBoard(os.path.join(logs, "tensorboard"),
                                    update_freq=max(1, chunk // 10)),
    ]
    fit_started = time.time()
    history = distiller.fit(dataset, epochs=chunks, steps_per_epoch=chunk,
                            callbacks=callbacks, shuffle=False,
                            verbose=2 if os.environ.get("CI") else 1)
    fit_seconds = time.time() - fit_started
    final = {k: float(v[-1]) for k, v in history.history.items()}
    if not all(math.isfinite(v) for v in final.values()):
        print(f"Training stopped on a non-finite loss; the last good student "
              f"is in {student_dir}.", file=sys.stderr)
        return 1
    steps_run = (chunks - resumed_chunks) * chunk
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
        "steps": int(distiller.optimizer.iterations.numpy()),
        "replicas": strategy.num_replicas_in_sync,
        "precision": args.precision,
        "final_losses": final,
        "wall_time_s": time.time() - started,
        "train_time_s": fit_seconds,
        "examples_per_s": steps_run * args.batch_size / fit_seconds,
    }
    if chief:
        with open(os.path.join(args.output_dir, "report.json"), "w") as f:
            json.dump(report, f, indent=2)
        print(f"Student saved to {student_dir}; report "
              f"{os.path.join(args.output_dir, 'report.json')}")
        print("Final losses: " + ", ".join(
            f"{k} {v:.4f}" for k, v in final.items() if not k[-1].isdigit()))
    return 0


def _resumed_epoch(backup_dir):
    metadata = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.exists(metadata):
        return 0
    with open(metadata) as f:
        return int(json.load(f).get("epoch", 0))


def main(argv=None):
    args = parse_args(argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError, FileExistsError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
