"""The report of a `trainers.pipeline` run: a table, plots and a Markdown page.

Reads what the stages wrote (task/ and export/ under the run's directory,
the general student's run in the cache) and writes there:

  report.md            the final table, what each stage did, the plots
  summary.json         the table as data
  plots/losses.png     loss per component for each training stage
  plots/attention.png  teacher vs student attention on a real test article,
                       one row per mapped layer
  plots/variants.png   accuracy against file size and latency

Keras latencies: batch 1, one thread, like the export stage's TFLite ones.

    python -m trainers.report --output-dir outputs/demo
"""

import argparse
import csv
import os
import sys
import time

import numpy as np

from tinybert_tf import console, files, pruning
from tinybert_tf.assets import display_name

ATTENTION_TOKENS = 24


# ---------------------------------------------------------------- inputs

def _json(path):
    try:
        return files.read_json(path)
    except ValueError as error:
        raise ValueError(f"{error} Run its stage again (trainers.pipeline "
                         "--redo STAGE).") from None


def read_log(path):
    """{column: float array} of a StepLog CSV; {} if there is none."""
    if not os.path.exists(path):
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {k: np.array([float(r[k]) if r[k] not in ("", "NA") else np.nan
                         for r in rows]) for k in rows[0]}


def read_results(root):
    task = _json(os.path.join(root, "task", "report.json"))
    # The trainers.general run of the task's start: the cached general
    # student (the pipeline's).
    general = os.path.dirname(os.path.abspath(
        (task["student"].get("start") or {}).get("checkpoint") or
        os.path.join(root, "general", "student")))
    results = {"general": _json(os.path.join(general, "report.json")),
               "task": task,
               "export": _json(os.path.join(root, "export",
                                            "export_report.json"))}
    results["logs"] = {
        "general distillation": read_log(os.path.join(general, "logs",
                                                      "steps.csv")),
        **{f"task {stage}": read_log(os.path.join(root, "task", "logs",
                                                  f"{stage}.csv"))
           for stage in ("teacher", "intermediate", "prediction", "baseline")}}
    return results


# ---------------------------------------------------------------- measures

def keras_latency_ms(model, inputs, runs=30, warmup=3):
    """Median wall time of a batch-1 forward pass (compiled function)."""
    import tensorflow as tf
    one = {k: tf.constant(v[:1]) for k, v in inputs.items()}
    forward = tf.function(lambda x: model(x, training=False))
    for _ in range(warmup):
        forward(one).numpy()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        forward(one).numpy()
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def attention_maps(model, inputs):
    """Head-averaged softmax attention of every layer, [L, T, T] numpy."""
    import tensorflow as tf
    scores = model.features(inputs, training=False)["attention_scores"]
    return np.stack([tf.reduce_mean(tf.nn.softmax(s[0], -1), 0).numpy()
                     for s in scores])


def build_table(results, latencies, sizes):
    """Rows of the final table: Keras teacher, students, TFLite variants."""
    task, export = results["task"], results["export"]
    metric = task["primary_metric"]
    split = "test" if "test" in task["retention"] else "dev"
    examples = task["examples"][split]
    rows = [
        {"model": "teacher (Keras, fine-tuned)",
         "accuracy": task["teacher"][split][metric],
         "parameters": task["teacher"]["parameters"],
         "size_mb": sizes["teacher"], "latency_ms": latencies["teacher"],
         "examples": examples},
        {"model": "student (Keras, TinyBERT distilled from a "
                   f"{_start(task)})",
         "accuracy": task["student"][split][metric],
         "parameters": task["student"]["parameters"],
         "size_mb": sizes["student"], "latency_ms": latencies["student"],
         "examples": examples}]
    if task.get("baseline"):
        data = task["baseline"]["train_data"]
        rows.append({"model": f"same student, trained on labels only ({data} "
                              f"data, from the same {_start(task)})",
                     "accuracy": task["baseline"][split][metric],
                     "parameters": task["baseline"]["parameters"],
                     "size_mb": sizes["student"],
                     "latency_ms": latencies["student"], "examples": examples})
    for name, variant in export["variants"].items():
        rows.append({
            "model": f"student TFLite {name}",
            "accuracy": variant["accuracy"],
            "mediapipe_accuracy": variant.get("mediapipe_accuracy"),
            "parameters": task["student"]["parameters"],
            "size_mb": variant["size_mb"],
            "latency_ms": variant["median_latency_ms"],
            "examples": export["eval_examples"]})
    return rows


def _start(task):
    return (task["student"].get("start") or {}).get("kind", "given start")


def table_markdown(rows, metric):
    lines = [f"| model | {metric} | MediaPipe {metric} | parameters | file MB "
             "| latency ms | examples |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        mediapipe = r.get("mediapipe_accuracy")
        lines.append(
            f"| {r['model']} | {r['accuracy']:.4f} | "
            f"{'' if mediapipe is None else f'{mediapipe:.4f}'} | "
            f"{r['parameters'] / 1e6:.2f}M | {r['size_mb']:.1f} | "
            f"{r['latency_ms']:.1f} | {r['examples']} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- plots

def plot_losses(logs, path):
    import matplotlib.pyplot as plt
    panels = [
        ("general distillation", "general distillation",
         ("embedding_loss", "attention_loss", "hidden_loss", "loss")),
        ("task step 1: intermediate layers", "task intermediate",
         ("embedding_loss", "attention_loss", "hidden_loss", "loss")),
        ("task step 2: prediction layer", "task prediction",
         ("prediction_loss",)),
        ("fine-tuning on labels (cross-entropy)", None, ()),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8))
    for ax, (title, key, columns) in zip(axes, panels):
        if key is None:
            for label, log_key in (("teacher", "task teacher"),
                                   ("student, labels only", "task baseline")):
                log = logs.get(log_key) or {}
                if "loss" in log:
                    ax.plot(log["step"], log["loss"], label=label)
        else:
            log = logs.get(key) or {}
            for column in columns:
                if column in log:
                    ax.plot(log["step"], log[column],
                            label=column.replace("_loss", "") if column != "loss"
                            else "total", lw=2 if column == "loss" else 1.2)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    axes[0].set_ylabel("loss (running mean within each epoch)")
    fig.tight_layout()
    _save_figure(fig, path, 110)
    plt.close(fig)


def plot_attention(teacher_maps, student_maps, teacher_layers, tokens, path):
    """One row per mapped layer: teacher layer g(m), student layer m."""
    import matplotlib.pyplot as plt
    rows = len(student_maps)
    n = len(tokens)
    fig, axes = plt.subplots(rows, 2, figsize=(11, 5.2 * rows))
    axes = np.atleast_2d(axes)
    for m in range(rows):
        t = teacher_layers[m]
        pairs = ((axes[m, 0], teacher_maps[t - 1][:n, :n],
                  f"teacher layer {t}"),
                 (axes[m, 1], student_maps[m][:n, :n],
                  f"student layer {m + 1}"))
        vmax = max(p[1].max() for p in pairs)
        for ax, matrix, title in pairs:
            ax.imshow(matrix, cmap="viridis", vmin=0, vmax=vmax)
            ax.set_title(f"{title} (mean over heads)", fontsize=10)
            ax.set_xticks(range(n), tokens, rotation=90, fontsize=7)
            ax.set_yticks(range(n), tokens, fontsize=7)
    fig.suptitle("Attention probabilities on a real test example "
                 "(rows: queries, columns: keys)", fontsize=11)
    fig.tight_layout()
    _save_figure(fig, path, 100)
    plt.close(fig)


def plot_variants(rows, metric, path):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, NullFormatter
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
    markers = "os^vDPX*"
    for ax, key, label in ((axes[0], "size_mb", "file size (MB, log scale)"),
                           (axes[1], "latency_ms",
                            "latency, batch 1, 1 thread (ms, log scale)")):
        for i, r in enumerate(rows):
            ax.scatter(r[key], r["accuracy"], s=60, marker=markers[i % 8],
                       label=r["model"])
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel(f"test {metric}")
        ax.grid(alpha=0.3, which="both")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=9)
    fig.tight_layout(rect=(0, 0.17, 1, 1))
    _save_figure(fig, path, 110)
    plt.close(fig)


# ---------------------------------------------------------------- page

def _stage_sections(results, wall_times):
    general, task, export = (results["general"], results["task"],
                             results["export"])
    metric = task["primary_metric"]
    split = "test" if "test" in task["retention"] else "dev"
    losses = general["final_losses"]
    mapping = general["mapping"]["teacher_layer_of_student"]
    augmentation = task["augmentation"]
    lines = [
        "## What each stage did", "",
        f"1. **General distillation** (`python -m trainers.general`): "
        f"{display_name(general['teacher']['source'])} "
        f"({general['teacher']['parameters']:,}"
        f" parameters) into a {general['student']['config']['num_layers']}-layer"
        f" student ({general['student']['parameters']:,}); student layers "
        f"1..{len(mapping)} learn from teacher layers {mapping}; "
        f"{general['steps']} steps on {general['corpus']['sequences']:,} "
        f"packed sequences of the offline English text (gensim's Wikipedia "
        f"+ Lee news, the BBC News train articles), "
        f"{general['examples_per_s']:.1f} examples/s; final losses: attention "
        f"{losses['attention_loss']:.3f}, hidden {losses['hidden_loss']:.3f}, "
        f"embedding {losses['embedding_loss']:.3f}.",
        f"2. **Teacher fine-tuning** (`python -m trainers.task`): status "
        f"*{task['teacher']['status']}*; {split} {metric} "
        f"{task['teacher'][split][metric]:.4f} "
        f"(dev {task['teacher']['dev'][metric]:.4f}).",
        f"3. **Data augmentation**: {augmentation['original_examples']} -> "
        f"{augmentation['augmented_examples']} training texts "
        f"(N={augmentation.get('samples_per_example')}, "
        f"p={augmentation.get('replace_prob')}, K={augmentation.get('top_k')};"
        f" masked LM: {augmentation.get('masked_lm') or 'none offline, GloVe for every word'}).",
        f"4. **Task distillation**: step 1 (embedding, attention, hidden) then "
        f"step 2 (prediction layer, best dev step {task['student']['best_dev_step']});"
        f" {split} {metric} {task['student'][split][metric]:.4f}, retention "
        f"{task['retention'][split]:.1%} of the teacher with "
        f"{task['parameter_ratio']:.1%} of its parameters.",
    ]
    if task.get("baseline"):
        lines.append(
            f"   The same student trained directly on the labels of the same "
            f"{task['baseline']['train_data']} data for "
            f"{task['baseline']['epochs']} epochs: "
            f"{task['baseline'][split][metric]:.4f} (distillation gain "
            f"{task['distillation_gain'][split]:+.4f}).")
    lines += [
        f"5. **Export** (`python -m export.tflite`): attention mask constant "
        f"{export['attention_mask_value']['exported']}, every variant verified with "
        f"LiteRT against the Keras student ({export['keras_accuracy']:.4f}) "
        f"and run on all {export['eval_examples']} {export['eval_split']} "
        "articles by MediaPipe's TextClassifier (the Android runtime), which "
        "tokenizes the raw text itself.",
        "",
        "Wall time (minutes): " + ", ".join(
            f"{k} {v / 60:.1f}" for k, v in wall_times.items()) + ".",
    ]
    return lines


def write_report(root):
    """Measures, plots and writes report.md; returns the table rows."""
    results = read_results(root)  # a missing or corrupt input, first
    import tensorflow as tf
    try:  # one thread for the latencies, unless TensorFlow already runs
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass
    from tinybert_tf import checkpoint
    from tinybert_tf.tokenizer import BertTextTokenizer

    task = results["task"]
    plots = os.path.join(root, "plots")
    os.makedirs(plots, exist_ok=True)
    models = {role: checkpoint.load_classifier(task[role]["checkpoint"])
              for role in ("teacher", "student")}
    tokenizer = BertTextTokenizer(
        checkpoint.read(task["student"]["checkpoint"]).vocab_file,
        task["sequence_length"])
    from tinybert_tf.task_data import TaskDataOptions, load_task_data
    data = load_task_data(TaskDataOptions.from_mapping(task["arguments"]))
    split = data.test if data.test is not None else data.dev
    inputs = {k: np.asarray(v) for k, v in tokenizer(split.text_a[:1]).items()}

    latencies = {role: keras_latency_ms(m, inputs) for role, m in models.items()}
    sizes = {role: os.path.getsize(os.path.join(
        task[role]["checkpoint"], "model.safetensors")) / 1e6
        for role in models}
    rows = pruning.pipeline_rows(root, build_table(results, latencies, sizes))
    metric = task["primary_metric"]

    plot_losses(results["logs"], os.path.join(plots, "losses.png"))
    ids = inputs["token_ids"][0]
    length = int(inputs["padding_mask"][0].sum())
    tokens = [tokenizer.vocabulary[i] for i in ids[:min(length, ATTENTION_TOKENS)]]
    plot_attention(attention_maps(models["teacher"], inputs),
                   attention_maps(models["student"], inputs),
                   results["general"]["mapping"]["teacher_layer_of_student"],
                   tokens, os.path.join(plots, "attention.png"))
    plot_variants(rows, metric, os.path.join(plots, "variants.png"))

    wall = {"general": results["general"]["wall_time_s"],
            **{k: v for k, v in task["wall_time_s"].items() if k != "total"}}
    lines = [
        "# TinyBERT demo report", "",
        f"Task **{task['task']}** ({', '.join(task['label_names'])}); "
        f"sequence length {task['sequence_length']}; latencies are the median "
        "of batch-1 runs on one CPU thread (Keras: compiled tf.function; "
        "TFLite: LiteRT interpreter).", "",
        table_markdown(rows, metric), "",
        *_stage_sections(results, wall), "",
        "## Loss curves", "", "![losses](plots/losses.png)", "",
        "## Attention: teacher vs student", "",
        f"The first {len(tokens)} word-pieces of the first test article; "
        "each student layer next to the teacher layer it learns from.", "",
        "![attention](plots/attention.png)", "",
        "## Accuracy, size and latency", "", "![variants](plots/variants.png)",
        ""]
    with files.staged_file(os.path.join(root, "report.md"),
                           encoding="utf-8") as f:
        f.write("\n".join(lines))
    files.write_json(os.path.join(root, "summary.json"),
                     {"metric": metric, "rows": rows})
    print(table_markdown(rows, metric))
    return rows


def _save_figure(fig, path, dpi):
    with files.staged_file(path, "wb") as f:
        fig.savefig(f, dpi=dpi, format="png")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m trainers.report",
                                description=__doc__.split("\n")[0])
    p.add_argument("--output-dir", required=True,
                   help="the directory of a trainers.pipeline run")
    console.add_verbose_flag(p)
    return p.parse_args(argv)


def run(args):
    try:
        write_report(args.output_dir)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{error} (run the earlier pipeline stages "
                                "first)") from None
    return 0


def main(argv=None):
    return console.run_main(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
