"""Structured pruning of a distilled student, recovered by distillation.

Method (docs/pruning.md):

1. **Importance.** Each attention head h and each FFN neuron j gets a gate
   xi (1 in the model) on its output: the head's context before the
   attention output projection, the neuron's activation before the FFN
   output projection. Its importance is |dL/dxi| accumulated over training
   batches, L the task loss (cross-entropy on the gold labels), and then
   divided by the L2 norm of its layer's scores: Michel, Levy & Neubig
   2019, "Are Sixteen Heads Really Better than One?" (NeurIPS; arXiv
   1905.10650, Sec. 4.1, Eq. 2, and its layer-wise L2 normalisation),
   extended to FFN neurons by a gate on the intermediate activations, as
   TextPruner does (Yang, Cui & Chen 2022, "TextPruner", ACL demos).
   The gates are not inserted: dL/dxi_h equals sum(dL/dW ⊙ W) over the rows
   of the output projection W that head h (neuron j) feeds, which a
   gradient with respect to the weights gives exactly (`importance`).
2. **Selection.** Heads are ranked across all layers by their normalised
   score and the best `heads_keep` are kept (a layer may lose every head);
   the same for FFN neurons (`ffn_keep`; each layer keeps at least one).
   Targets are fractions of the UNPRUNED model (a float, 0.5) or counts (an
   int, 24); `params_keep` instead finds the largest common fraction of
   heads and neurons whose Transformer layers fit a non-embedding parameter
   budget.
3. **Removal** (`prune`): smaller weight matrices; the config records, per
   layer, the original indices of the kept heads (`BertConfig.heads_kept`:
   the attention loss pairs each one with the teacher head of the same
   index) and the FFN width (`intermediate_sizes`).
4. **Recovery** (`recover`): TinyBERT's two steps again, from the teacher
   (`task_distillation.TaskDistillation`: step 1, embedding + attention on
   the remaining heads + hidden states; step 2, the prediction layer, best
   on dev; the pruned model before recovery is kept instead if it is
   better on dev). With `rounds` > 1, steps 1-4 repeat with targets interpolated
   from the student's size to the final one (iterative pruning).

Example:
>>> import numpy as np
>>> from tinybert_tf import BertBackbone, BertClassifier, BertConfig
>>> from tinybert_tf import pruning
>>> model = BertClassifier(BertBackbone(BertConfig(vocab_size=30,
...     hidden_size=16, num_layers=2, num_heads=4, intermediate_size=32),
...     name="bert"), num_labels=2)
>>> scores = pruning.Importance(
...     heads=[np.array([.1, .9, .5, .2]), np.array([.3, .2, .8, .7])],
...     neurons=[np.arange(32.0), np.arange(32.0)[::-1]])
>>> plan = pruning.select(model.config, scores, heads_keep=0.5, ffn_keep=16)
>>> plan.heads
((1, 2), (2, 3))
>>> small = pruning.prune(model, plan)
>>> small.config.intermediate_sizes, small.config.non_embedding_parameters()
((8, 8), 1792)
"""

import dataclasses
import os
import re

import numpy as np


def parse_keep(text, flag="--heads-keep"):
    """'0.5' -> 0.5 (a fraction), '24' -> 24 (a count); ValueError naming
    `flag` otherwise."""
    text = str(text).strip()
    try:
        value = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{flag} {text!r} is neither a fraction (0.5) "
                             "nor a count (24).") from None
        if not 0.0 < value <= 1.0:
            raise ValueError(f"{flag} {text}: a fraction must be in (0, 1].")
        return value
    if value < 0:
        raise ValueError(f"{flag} {text}: a count must be >= 0.")
    return value


def _count(keep, total, flag):
    """A keep target (fraction of `total` or count) as a count."""
    if keep is None:
        return total
    if isinstance(keep, float):
        return int(round(keep * total))
    if keep > total:
        raise ValueError(f"{flag} {keep} exceeds the {total} of the unpruned "
                         "model.")
    return int(keep)


def unpruned(config):
    return config.replace(heads_kept=None, intermediate_sizes=None)


# ---------------------------------------------------------------- scores

@dataclasses.dataclass
class Importance:
    """Importance scores: `heads[i]`, one per remaining head of layer i (in
    `config.layer_heads(i)` order); `neurons[i]`, one per FFN neuron."""

    heads: list
    neurons: list

    def normalised(self):
        """Each layer's scores divided by their L2 norm (Michel et al.)."""
        def norm(values):
            values = np.asarray(values, np.float64)
            size = np.linalg.norm(values)
            return values / size if size > 0 else values
        return Importance([norm(v) for v in self.heads],
                          [norm(v) for v in self.neurons])


def importance(model, dataset, max_batches=None):
    """Gradient-based importance (`Importance`, not normalised) of every
    head and FFN neuron of the `BertClassifier` `model`, accumulated over
    the (inputs, labels[, ...]) batches of `dataset`.

    Per batch, |dL/dxi| of each gate xi (see the module doc) is added; L is
    the mean cross-entropy (MSE for regression) of the batch. Dropout off.
    """
    import tensorflow as tf

    from tinybert_tf.training import task_loss

    layers = model.backbone.transformer_layers
    # One output projection per gate group: the attention output of each
    # layer with heads, the FFN output of every layer.
    variables, owners = [], []
    for i, layer in enumerate(layers):
        if layer.num_heads:
            variables.append(layer.attention_output.kernel)
            owners.append(("heads", i))
        variables.append(layer.output_dense.kernel)
        owners.append(("neurons", i))
    loss_fn = task_loss(model.num_labels)
    head_size = model.config.head_size

    @tf.function
    def gates(inputs, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(inputs, training=False))
        grads = tape.gradient(loss, variables)
        # [rows, H] kernels -> dL/dxi of each row (a neuron; a head owns
        # `head_size` rows).
        return [tf.reduce_sum(g * v, axis=1) for g, v in zip(grads, variables)]

    totals = {owner: 0.0 for owner in owners}
    for index, batch in enumerate(dataset):
        if max_batches is not None and index >= max_batches:
            break
        for owner, rows in zip(owners, gates(batch[0], batch[1])):
            rows = rows.numpy().astype(np.float64)
            if owner[0] == "heads":
                rows = rows.reshape(-1, head_size).sum(axis=1)
            totals[owner] = totals[owner] + np.abs(rows)
    return Importance(
        [np.asarray(totals.get(("heads", i), np.zeros(0)), np.float64)
         for i in range(len(layers))],
        [np.asarray(totals[("neurons", i)], np.float64)
         for i in range(len(layers))])


# ---------------------------------------------------------------- selection

@dataclasses.dataclass(frozen=True)
class PruningPlan:
    """What a model keeps: `heads[i]`, the ORIGINAL indices of layer i's
    kept heads; `neurons[i]`, the positions (in the current model) of its
    kept FFN neurons, ascending."""

    heads: tuple
    neurons: tuple

    def removed(self, config):
        """Per layer: the original heads removed and kept, the FFN neurons
        removed and kept."""
        return _removed(config, self.config(config))

    def config(self, config):
        """`config` after this plan."""
        return config.replace(heads_kept=self.heads,
                              intermediate_sizes=tuple(
                                  len(n) for n in self.neurons))


def select(config, scores, heads_keep=None, ffn_keep=None, params_keep=None):
    """The `PruningPlan` keeping the most important heads and neurons.

    `heads_keep` / `ffn_keep`: a fraction (float) or count (int) of the
    unpruned model's heads / FFN neurons, ranked across layers by
    normalised score (None: keep all that remain). `params_keep`: instead,
    a fraction or count of the unpruned model's non-embedding parameters:
    the largest common fraction of heads and neurons within it.
    """
    if params_keep is not None:
        if heads_keep is not None or ffn_keep is not None:
            raise ValueError("Give either params_keep or heads_keep/ffn_keep.")
        return _select_for_parameters(config, scores, params_keep)
    scores = scores.normalised()
    full = unpruned(config)
    total_heads = full.num_layers * full.num_heads
    total_neurons = full.num_layers * full.intermediate_size
    want_heads = _count(heads_keep, total_heads, "--heads-keep")
    want_neurons = _count(ffn_keep, total_neurons, "--ffn-keep")
    have_heads = sum(config.layer_num_heads(i) for i in range(config.num_layers))
    have_neurons = sum(config.layer_intermediate_size(i)
                       for i in range(config.num_layers))
    want_heads = min(want_heads, have_heads)
    want_neurons = max(min(want_neurons, have_neurons), config.num_layers)

    ranked = sorted(((-float(s), i, j) for i, layer in enumerate(scores.heads)
                     for j, s in enumerate(layer)))
    kept = {(i, j) for _, i, j in ranked[:want_heads]}
    heads = tuple(tuple(h for j, h in enumerate(config.layer_heads(i))
                        if (i, j) in kept) for i in range(config.num_layers))

    # Each layer keeps its best neuron; the rest by global rank.
    best = {(i, int(np.argmax(layer))) for i, layer in enumerate(scores.neurons)}
    ranked = sorted(((-float(s), i, j) for i, layer in enumerate(scores.neurons)
                     for j, s in enumerate(layer) if (i, j) not in best))
    chosen = best | {(i, j) for _, i, j in ranked[:want_neurons - len(best)]}
    neurons = tuple(np.asarray(sorted(j for li, j in chosen if li == i),
                               np.int64) for i in range(config.num_layers))
    return PruningPlan(heads, neurons)


def _select_for_parameters(config, scores, params_keep):
    full = unpruned(config)
    budget = _count(params_keep, full.non_embedding_parameters(),
                    "--params-keep")
    low, high, plan = 0.0, 1.0, None
    for _ in range(40):  # bisection on the common keep fraction
        middle = (low + high) / 2
        candidate = select(config, scores, heads_keep=middle,
                           ffn_keep=middle)
        if candidate.config(config).non_embedding_parameters() <= budget:
            low, plan = middle, candidate
        else:
            high = middle
    if plan is None:
        plan = select(config, scores, heads_keep=0, ffn_keep=0)
    return plan


# ---------------------------------------------------------------- removal

_CUT = re.compile(r"\.encoder\.layer\.(\d+)\.(attention\.self|attention\."
                  r"output\.dense|intermediate\.dense|output\.dense)"
                  r"(?:\.query|\.key|\.value)?\.(weight|bias)$")
# (part, weight/bias) -> (the axis pruning cuts in the Keras [in, out]
# layout, what it cuts); output projections' biases keep their size.
_CUTS = {("attention.self", "weight"): (1, "heads"),
         ("attention.self", "bias"): (0, "heads"),
         ("attention.output.dense", "weight"): (0, "heads"),
         ("intermediate.dense", "weight"): (1, "neurons"),
         ("intermediate.dense", "bias"): (0, "neurons"),
         ("output.dense", "weight"): (0, "neurons")}


def _cut(name):
    """(layer, axis, 'heads' or 'neurons') of a tensor pruning cuts."""
    match = _CUT.search(name)
    if match is None or (match[2], match[3]) not in _CUTS:
        return None
    return (int(match[1]),) + _CUTS[(match[2], match[3])]


def prune(model, plan):
    """A new, smaller `BertClassifier` (or `BertBackbone`) with what `plan`
    keeps of `model`'s weights (the same outputs as `model` with the
    removed heads and neurons gated to 0)."""
    from tinybert_tf import checkpoint
    from tinybert_tf.backbone import BertBackbone, dummy_inputs
    from tinybert_tf.heads import clone_classifier

    if not model.built:
        model(dummy_inputs())
    old = model.config
    new = plan.config(old)
    if hasattr(model, "backbone"):
        pruned = clone_classifier(model, heads_kept=new.heads_kept,
                                  intermediate_sizes=new.intermediate_sizes)
    else:
        pruned = BertBackbone(new, name=model.name)
        pruned(dummy_inputs())
    d = old.head_size
    source = checkpoint.model_variables(model)
    for name, (variable, _) in checkpoint.model_variables(pruned).items():
        value = np.asarray(source[name][0].numpy())
        cut = _cut(name)
        if cut is not None:
            layer, axis, kind = cut
            if kind == "heads":
                current = list(old.layer_heads(layer))
                index = [current.index(h) * d + j for h in plan.heads[layer]
                         for j in range(d)]
            else:
                index = plan.neurons[layer]
            value = np.take(value, np.asarray(index, np.int64), axis=axis)
        variable.assign(value)
    if getattr(model, "vocab_file", None):
        pruned.vocab_file = model.vocab_file
    return pruned


# ---------------------------------------------------------------- rounds

@dataclasses.dataclass(frozen=True)
class PruneOptions:
    """What to remove and how to recover.

    `heads_keep`, `ffn_keep`, `params_keep`: the final targets (`select`).
    `rounds`: score-remove-recover this many times, the targets
    interpolated linearly from the student's size. `importance_batches`:
    batches of the training data the scores see (None: all of it, once).
    `recovery`: the `TaskDistillationConfig` of the recovery (its
    intermediate and prediction epochs and learning rates, batch size,
    dev evaluation); None: no recovery.
    """

    heads_keep: float | int | None = None
    ffn_keep: float | int | None = None
    params_keep: float | int | None = None
    rounds: int = 1
    importance_batches: int | None = None
    recovery: object = None

    def __post_init__(self):
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}.")
        if self.params_keep is not None and (self.heads_keep is not None
                                             or self.ffn_keep is not None):
            raise ValueError("Give either a parameter target (--params-keep)"
                             " or --heads-keep/--ffn-keep, not both.")

    def targets(self, config, round_index):
        """`select` keywords (counts) of round `round_index` (1-based) for
        a model of `config`."""
        share = round_index / self.rounds
        full = unpruned(config)
        layers = range(config.num_layers)

        def step(now, final):
            return int(round(now + (final - now) * share))
        if self.params_keep is not None:
            final = _count(self.params_keep, full.non_embedding_parameters(),
                           "--params-keep")
            return {"params_keep": step(config.non_embedding_parameters(),
                                        final)}
        heads = sum(config.layer_num_heads(i) for i in layers)
        neurons = sum(config.layer_intermediate_size(i) for i in layers)
        return {
            "heads_keep": step(heads, min(heads, _count(
                self.heads_keep, full.num_layers * full.num_heads,
                "--heads-keep"))),
            "ffn_keep": step(neurons, min(neurons, _count(
                self.ffn_keep, full.num_layers * full.intermediate_size,
                "--ffn-keep")))}


@dataclasses.dataclass
class PruneRound:
    removed: list  # PruningPlan.removed
    parameters: int
    non_embedding_parameters: int
    after_pruning: dict  # {split: {metric: value}}
    after_recovery: dict | None
    recovery_best_step: int | None  # 0: recovery was not kept


@dataclasses.dataclass
class PruneResult:
    student: object  # the pruned (and recovered) BertClassifier
    projections: dict | None  # to save with it (checkpoint.save)
    before: dict  # scores of the student given
    rounds: list  # PruneRound

    def report(self, original):
        """The prune_report.json dict; `original` is the student given."""
        last = self.rounds[-1]
        config = self.student.config
        return {
            "method": "gradient-based importance (Michel et al. 2019), "
                      "global ranking, physical removal, TinyBERT "
                      "distillation recovery (docs/pruning.md)",
            "config": {"heads_kept": [list(h) for h in
                                      (config.heads_kept or [])] or None,
                       "intermediate_sizes": list(
                           config.intermediate_sizes or []) or None},
            "removed": _removed(original.config, config),
            "parameters": {
                "before": original.count_params(),
                "after": self.student.count_params(),
                "non_embedding_before": original.config.non_embedding_parameters(),
                "non_embedding_after": config.non_embedding_parameters()},
            "scores": {"before_pruning": self.before,
                       "after_pruning": last.after_pruning,  # last round's
                       "after_recovery": last.after_recovery},
            "rounds": [dataclasses.asdict(r) for r in self.rounds],
        }


def _removed(before, after):
    return [{"layer": i,
             "heads_removed": sorted(set(before.layer_heads(i))
                                     - set(after.layer_heads(i))),
             "heads_kept": list(after.layer_heads(i)),
             "ffn_neurons_removed": before.layer_intermediate_size(i)
             - after.layer_intermediate_size(i),
             "ffn_neurons_kept": after.layer_intermediate_size(i)}
            for i in range(before.num_layers)]


def recover(teacher, student, inputs, config, distillation_options=None,
            data=None, projections=None, say=None, teacher_logits=None):
    """TinyBERT's two distillation steps on a pruned `student` (the
    `TaskDistillation` of `tinybert_tf.task_distillation`, not a loop of
    its own): step 1 (if `config.intermediate_epochs`) from `projections`
    (HF-named `fit_dense*` tensors, or None), step 2 best on dev. Returns
    (projections after it, the step-2 `BestOnDev`)."""
    from tinybert_tf.checkpoint import Checkpoint
    from tinybert_tf.task_distillation import TaskDistillation
    run = TaskDistillation(teacher, student, inputs, config,
                           distillation_options, say=say,
                           teacher_logits=teacher_logits)
    if config.intermediate_epochs:
        start = (Checkpoint(student.config, projections, None, source="")
                 if projections else None)
        projections, _, _ = run.intermediate_step(data, projections_from=start)
    best = run.prediction_step(data)
    return projections, best


def prune_and_recover(teacher, student, inputs, options, distillation_options=None,
                      data=None, projections=None, say=None,
                      teacher_logits=None):
    """Prunes the task-distilled `student` (a `BertClassifier`) as `options`
    (`PruneOptions`) say, recovering from the fine-tuned `teacher` after
    each round; `inputs` (`TaskInputs`) score it, `data` (a `Split`,
    default the task's train split) trains it and feeds the importance
    scores. Returns a `PruneResult`."""
    say = say or (lambda *a: None)
    data = inputs.train if data is None else data
    before = inputs.scores(student)
    rounds, model = [], student
    for r in range(1, options.rounds + 1):
        scores = importance(model, inputs.make(data),
                            options.importance_batches)
        plan = select(model.config, scores, **options.targets(model.config, r))
        removed = plan.removed(model.config)
        model = prune(model, plan)
        after = inputs.scores(model)
        say(f"Round {r}/{options.rounds}: {_describe(model.config)}; "
            f"{_primary(after, inputs)} after pruning.")
        recovered = best_step = None
        if options.recovery is not None:
            unrecovered, start = model.get_weights(), projections
            projections, best = recover(
                teacher, model, inputs, options.recovery,
                distillation_options, data, projections, say, teacher_logits)
            recovered, best_step = inputs.scores(model), best.best_step
            metric = inputs.select_metric
            if after["dev"][metric] > recovered["dev"][metric]:
                # Best on dev over the whole round: the pruned model itself
                # is a candidate (recovery on a small dev set can lose).
                model.set_weights(unrecovered)
                recovered, best_step, projections = after, 0, start
            say(f"Round {r}: {_primary(recovered, inputs)} after recovery"
                f"{' (the pruned model: recovery did not help on dev)' if best_step == 0 else ''}.")
        rounds.append(PruneRound(removed, model.count_params(),
                                 model.config.non_embedding_parameters(),
                                 after, recovered, best_step))
    return PruneResult(model, projections, before, rounds)


def _describe(config):
    layers = range(config.num_layers)
    return ("heads per layer " + "/".join(
        str(config.layer_num_heads(i)) for i in layers) + ", FFN " + "/".join(
        str(config.layer_intermediate_size(i)) for i in layers)
        + f", {config.non_embedding_parameters():,} non-embedding parameters")


def _primary(scores, inputs):
    split = "test" if "test" in scores else "dev"
    metric = inputs.select_metric
    return f"{split} {metric} {scores[split][metric]:.4f}"


def pipeline_rows(root, rows):
    """The rows of `trainers.report`'s table for the run in `root`: those of
    a `trainers.pipeline --prune` run (ROOT/prune/prune_report.json) name
    the pruned student on its TFLite rows, with its parameters (the export
    stage shipped it); the rows of other runs are returned as they are."""
    from tinybert_tf import files
    path = os.path.join(root, "prune", "prune_report.json")
    if not os.path.exists(path):
        return rows
    report = files.read_json(path)
    heads = "/".join(str(len(layer["heads_kept"]))
                     for layer in report["removed"])
    ffn = "/".join(str(layer["ffn_neurons_kept"]) for layer in report["removed"])
    label = f"pruned student (heads {heads}, FFN {ffn})"
    return [dict(row, model=row["model"].replace("student", label, 1),
                 parameters=report["parameters"]["after"])
            if row["model"].startswith("student TFLite") else row
            for row in rows]
