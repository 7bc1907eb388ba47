"""TextPruner's structured pruning against ours, on the same student.

The task-distilled student (`--student`, a project checkpoint: a Hugging
Face BERT directory) is loaded in PyTorch (`transformers.BertModel` plus
the student's own head: mean pooling or [CLS], tanh, relu, linear), and
TextPruner's `TransformerPruner` (pip `textpruner`, the `bench` extra)
prunes it with its own importance scores (its loss-gradient scores of the
attention output / FFN weights, `pruning_method="iterative"`, one
iteration) to the same totals as `--heads-keep` / `--ffn-keep`, both with
its default even masking (the same number of heads and neurons in every
layer) and with global masking. transformers 5.x has no `prune_heads`,
which TextPruner's physical head removal calls, so it runs with
`keep_shape=True` (pruned heads and neurons zeroed in place) and its masks
are then applied to the Keras student with `tinybert_tf.pruning.prune`
(exact: both accuracies are printed). Then our recovery
(`tinybert_tf.pruning.recover`: TinyBERT distillation from `--teacher`,
attention loss on the remaining heads, best on dev) runs on each result.

Run (docs/pruning.md):

```bash
.venv/bin/python benchmarks/textpruner_compare.py \\
    --student outputs/task/student --teacher outputs/task/teacher \\
    --heads-keep 0.67 --ffn-keep 0.5 --output benchmarks/results/textpruner.json
```
"""

import argparse
import json
import os
import tempfile

import numpy as np


def torch_classifier(directory):
    """The student as a PyTorch module TextPruner can prune (`.bert` is a
    `transformers.BertModel`) whose forward returns {"loss", "logits"}."""
    import torch
    import transformers
    from safetensors.numpy import load_file

    with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
        extras = json.load(f).get("tinybert", {})
    weights = load_file(os.path.join(directory, "model.safetensors"))

    class Classifier(torch.nn.Module):
        base_model_prefix = "bert"

        def __init__(self):
            super().__init__()
            self.bert = transformers.BertModel.from_pretrained(
                directory, attn_implementation="eager")
            self.config = self.bert.config
            kernel = torch.tensor(weights["classifier.weight"])
            self.classifier = torch.nn.Linear(kernel.shape[1], kernel.shape[0])
            with torch.no_grad():
                self.classifier.weight.copy_(kernel)
                self.classifier.bias.copy_(torch.tensor(
                    weights["classifier.bias"]))
            self.pooling = extras.get("pooling", "cls")
            self.head = extras.get("head", "linear")

        def forward(self, input_ids, attention_mask, token_type_ids,
                    labels=None):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=token_type_ids)
            if self.pooling == "mean":
                mask = attention_mask[..., None].float()
                mean = ((out.last_hidden_state * mask).sum(1)
                        / mask.sum(1).clamp(min=1.0))
                pooled = torch.tanh(self.bert.pooler.dense(mean))
            else:
                pooled = out.pooler_output
            if self.head == "tanh_relu":
                pooled = torch.relu(pooled)
            logits = self.classifier(pooled)
            loss = (None if labels is None else
                    torch.nn.functional.cross_entropy(logits, labels))
            return {"loss": loss, "logits": logits}

    return Classifier().eval()


def torch_batches(inputs, labels, batch_size=32):
    import torch
    names = {"token_ids": "input_ids", "padding_mask": "attention_mask",
             "segment_ids": "token_type_ids"}
    for start in range(0, len(labels), batch_size):
        batch = {theirs: torch.tensor(inputs[ours][start:start + batch_size],
                                      dtype=torch.long)
                 for ours, theirs in names.items()}
        batch["labels"] = torch.tensor(labels[start:start + batch_size],
                                       dtype=torch.long)
        yield batch


def torch_accuracy(model, inputs, labels):
    import torch
    predictions = []
    with torch.no_grad():
        for batch in torch_batches(inputs, labels):
            batch.pop("labels")
            predictions.append(model(**batch)["logits"].argmax(-1).numpy())
    return float(np.mean(np.concatenate(predictions) == labels))


def textpruner_masks(model, inputs, labels, heads, ffn, even):
    """TextPruner's (head_mask, ffn_mask) [layers, heads / neurons], 1 =
    kept, for `heads` heads and `ffn` neurons per layer on average; the
    model is pruned in place (zeroed, its shapes kept)."""
    from textpruner import (GeneralConfig, TransformerPruner,
                            TransformerPruningConfig)
    config = TransformerPruningConfig(
        target_ffn_size=ffn, target_num_of_heads=heads,
        pruning_method="iterative", n_iters=1, ffn_even_masking=even,
        head_even_masking=even)
    pruner = TransformerPruner(model, config, GeneralConfig(
        use_device="cpu", output_dir=tempfile.mkdtemp(prefix="textpruner-")))
    pruner.prune(dataloader=list(torch_batches(inputs, labels)),
                 keep_shape=True, save_model=False)
    model.eval()
    return pruner.head_mask.numpy(), pruner.ffn_mask.numpy()


def plan_of(head_mask, ffn_mask):
    from tinybert_tf.pruning import PruningPlan
    return PruningPlan(
        tuple(tuple(int(h) for h in np.flatnonzero(row)) for row in head_mask),
        tuple(np.flatnonzero(row).astype(np.int64) for row in ffn_mask))


def _row(method, model, inputs, **extra):
    config = model.config
    layers = range(config.num_layers)
    return {"method": method,
            "heads": "/".join(str(config.layer_num_heads(i)) for i in layers),
            "ffn": "/".join(str(config.layer_intermediate_size(i))
                            for i in layers),
            "non_embedding_parameters": config.non_embedding_parameters(),
            "keras_test_accuracy": inputs.scores(model)["test"]["accuracy"],
            **extra}


def run(args):
    import keras

    from export.data import encode
    from tinybert_tf import checkpoint, pruning, students
    from tinybert_tf import task_distillation as td
    from tinybert_tf.task_data import TaskDataOptions, load_task_data
    from tinybert_tf.teacher_outputs import TeacherLogits

    task = load_task_data(TaskDataOptions())
    ckpt = checkpoint.read(args.student)
    length = ckpt.extras.get("sequence_length", 128)
    _, teacher_ckpt, tokenizer = students.read_teacher(args.teacher, length)
    teacher = students.load_fine_tuned_teacher(
        teacher_ckpt, task.num_labels, task.label_names)
    student = checkpoint.load_classifier(ckpt)
    config = student.config
    heads = int(round(args.heads_keep * config.num_heads))  # per layer
    ffn = int(round(args.ffn_keep * config.intermediate_size))
    train = encode(tokenizer, task.train.text_a)
    test = encode(tokenizer, task.test.text_a)
    inputs = td.TaskInputs(task, tokenizer, 32, bucketing=True)
    recovery = td.TaskDistillationConfig.recipe("fast", quick=True)
    projections = {k: v for k, v in ckpt.weights.items()
                   if k.startswith("fit_dense")} or None
    logits = TeacherLogits(teacher, tokenizer)

    def recovered(model):
        keras.utils.set_random_seed(0)
        pruning.recover(teacher, model, inputs, recovery, projections=projections,
                        teacher_logits=logits)
        return inputs.scores(model)["test"]["accuracy"]

    rows = [_row("unpruned", student, inputs, torch_test_accuracy=torch_accuracy(
        torch_classifier(args.student), test, task.test.labels))]
    for even in (True, False):
        model = torch_classifier(args.student)
        head_mask, ffn_mask = textpruner_masks(
            model, train, task.train.labels, heads, ffn, even)
        pruned = pruning.prune(student, plan_of(head_mask, ffn_mask))
        row = _row(f"TextPruner ({'even' if even else 'global'} masking)",
                   pruned, inputs, torch_test_accuracy=torch_accuracy(
                       model, test, task.test.labels))
        if args.recovery:
            row["recovered_test_accuracy"] = recovered(pruned)
        rows.append(row)
        print(row, flush=True)
    rng = np.random.default_rng(0)  # the same totals, chosen at random
    random = pruning.Importance(
        [rng.random(config.num_heads) for _ in range(config.num_layers)],
        [rng.random(config.intermediate_size) for _ in range(config.num_layers)])
    rows.append(_row("random heads and neurons (no recovery)", pruning.prune(
        student, pruning.select(config, random,
                                heads_keep=heads * config.num_layers,
                                ffn_keep=ffn * config.num_layers)), inputs))
    scores = pruning.importance(student, inputs.make(task.train))
    pruned = pruning.prune(student, pruning.select(
        config, scores, heads_keep=heads * config.num_layers,
        ffn_keep=ffn * config.num_layers))
    row = _row("ours (Michel et al., per-layer normalised, global)", pruned,
               inputs)
    if args.recovery:
        row["recovered_test_accuracy"] = recovered(pruned)
    rows.append(row)
    return rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--student", required=True)
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--heads-keep", type=float, default=0.67)
    parser.add_argument("--ffn-keep", type=float, default=0.5)
    parser.add_argument("--recovery", action=argparse.BooleanOptionalAction,
                        default=True)
    parser.add_argument("--output", default=None)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    rows = run(args)
    lines = ["| pruning | heads per layer | FFN per layer | non-emb. params | "
             "test acc. (PyTorch, TextPruner's model) | test acc. (Keras, "
             "no recovery) | after our recovery |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for row in rows:
        def cell(name):
            value = row.get(name)
            return "" if value is None else f"{value:.4f}"
        lines.append(f"| {row['method']} | {row['heads']} | {row['ffn']} | "
                     f"{row['non_embedding_parameters']:,} | "
                     f"{cell('torch_test_accuracy')} | "
                     f"{cell('keras_test_accuracy')} | "
                     f"{cell('recovered_test_accuracy')} |")
    print("\n".join(lines))
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
