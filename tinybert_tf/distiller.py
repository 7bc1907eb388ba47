"""`Distiller`: TinyBERT's Transformer distillation as a `keras.Model`.

It holds a frozen teacher, the student and the learnable projections W that
lift student hidden states to the teacher's width, and computes the layered
loss in its own `train_step`:

  loss = w_emb * L_emb(E_S W, E_T)
       + sum_m w_m * [ w_att * L_att(A_S^m, A_T^g(m)) + w_hid * L_hid(H_S^m W, H_T^g(m)) ]
       + w_pred * L_pred(z_S, z_T)

Stages: "intermediate" (embedding + attention + hidden), "prediction", "all".

Example:
>>> import numpy as np, keras
>>> from tinybert_tf.backbone import BertBackbone, dummy_inputs
>>> from tinybert_tf.config import BertConfig
>>> from tinybert_tf.distiller import Distiller
>>> small = dict(vocab_size=50, num_heads=2, intermediate_size=16)
>>> teacher = BertBackbone(BertConfig(hidden_size=16, num_layers=4, **small))
>>> student = BertBackbone(BertConfig(hidden_size=8, num_layers=2, **small))
>>> distiller = Distiller(teacher, student)
>>> distiller.compile(optimizer="adam")
>>> data = {k: np.asarray(v).repeat(4, 0) for k, v in dummy_inputs().items()}
>>> logs = distiller.fit(data, batch_size=2, epochs=1, verbose=0).history
>>> sorted(logs)[:3]
['attention_loss', 'attention_loss_1', 'attention_loss_2']
"""

import dataclasses

import keras
import tensorflow as tf
from keras import ops

from tinybert_tf.backbone import dummy_inputs
from tinybert_tf.choices import REGRESSION_TARGETS
from tinybert_tf.distribute import (BuiltBeforeFit, clip_gradients,
                                    is_multi_worker)
from tinybert_tf.layer_mapping import LayerMapping
from tinybert_tf.losses import (AttentionLoss, EmbeddingLoss, HiddenStateLoss,
                                PredictionLoss, RegressionLoss)

STAGES = ("intermediate", "prediction", "all")
PROJECTIONS = ("shared", "per_layer")


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """Per-component weights (the paper uses 1 for all) and per-layer λ_m.

    `layers` maps a student layer m (1-based) to its weight; missing layers
    weigh 1.
    """

    embedding: float = 1.0
    attention: float = 1.0
    hidden: float = 1.0
    prediction: float = 1.0
    layers: dict = dataclasses.field(default_factory=dict)

    def layer(self, m):
        return float(self.layers.get(m, 1.0))


class Distiller(BuiltBeforeFit, keras.Model):
    """Transformer distillation of `teacher` into `student`.

    Args:
        teacher, student: `BertBackbone`s (general distillation) or
            `BertClassifier`s (task distillation). Same vocabulary required;
            the attention loss needs the same number of heads (for a pruned
            student: of its unpruned config; each remaining head is paired
            with the teacher head of its original index).
        mapping: a `LayerMapping` (default: uniform over their depths).
        stage: "intermediate", "prediction" or "all".
        projection: "shared" (one W for every hidden state, as the official
            code's `fit_dense`) or "per_layer" (one W per mapped state).
        loss_weights: `LossWeights`.
        attention_loss, hidden_loss, embedding_loss, prediction_loss: loss
            objects (defaults: the official behaviour; the embedding loss
            defaults to `EmbeddingLoss` in the mode of a `HiddenStateLoss`).
        teacher_training: run the teacher with dropout, as both official
            scripts do (they never call `teacher_model.eval()`); default off.
            Without it, the "prediction" stage takes the teacher's logits
            from the data when a batch has them, `(inputs, labels,
            teacher_logits)` (`tinybert_tf.teacher_outputs`), and runs the
            student alone.
        regression_target: what a regression student's prediction layer
            learns: "teacher" (MSE to the teacher's outputs, the paper's
            method) or "labels" (MSE to the gold labels: the official code,
            a known bug, huawei-noah/Pretrained-Language-Model#128).
        prediction_target: what the prediction layer learns: "teacher"
            (TinyBERT's prediction-layer distillation) or "labels" (the gold
            labels: cross-entropy, MSE for regression; the paper's ablation
            without L_pred, Table 4).
    """

    def __init__(self, teacher, student, mapping=None, stage="intermediate",
                 projection="shared", loss_weights=None, attention_loss=None,
                 hidden_loss=None, embedding_loss=None, prediction_loss=None,
                 teacher_training=False, regression_target="teacher",
                 prediction_target="teacher", **kwargs):
        super().__init__(**kwargs)
        for name, value in (("regression_target", regression_target),
                            ("prediction_target", prediction_target)):
            if value not in REGRESSION_TARGETS:
                raise ValueError(f"{name} must be one of {REGRESSION_TARGETS},"
                                 f" got {value!r}.")
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}.")
        if projection not in PROJECTIONS:
            raise ValueError(f"projection must be one of {PROJECTIONS}, got "
                             f"{projection!r}.")
        t_config, s_config = teacher.config, student.config
        if t_config.vocab_size != s_config.vocab_size:
            raise ValueError(
                f"Teacher vocab_size {t_config.vocab_size} != student vocab_size"
                f" {s_config.vocab_size}: TinyBERT needs one shared vocabulary "
                "(the student is fed the teacher's word-piece ids).")
        if stage != "prediction" and t_config.num_heads != s_config.num_heads:
            raise ValueError(
                f"Teacher has {t_config.num_heads} attention heads, student "
                f"{s_config.num_heads}: the attention loss compares them head "
                "by head, so they must be equal.")
        if stage != "prediction" and t_config.heads_kept is not None:
            raise ValueError(
                "The teacher has pruned attention heads: the attention loss "
                "pairs each student head with the teacher head of its "
                "original index, which needs an unpruned teacher.")
        if stage != "intermediate":
            for role, model in (("teacher", teacher), ("student", student)):
                if not hasattr(model, "classifier"):
                    raise ValueError(f"stage={stage!r} needs a classifier "
                                     f"{role} (BertClassifier).")
            if teacher.num_labels != student.num_labels:
                raise ValueError(f"Teacher has {teacher.num_labels} labels, "
                                 f"student {student.num_labels}.")
        self.teacher = teacher
        self.student = student
        self.teacher.trainable = False
        self.mapping = mapping or LayerMapping(s_config.num_layers,
                                               t_config.num_layers)
        if (self.mapping.student_layers, self.mapping.teacher_layers) != (
                s_config.num_layers, t_config.num_layers):
            raise ValueError(
                f"Layer mapping is for {self.mapping.student_layers} student /"
                f" {self.mapping.teacher_layers} teacher layers, but the models"
                f" have {s_config.num_layers} / {t_config.num_layers}.")
        self.stage = stage
        self.projection = projection
        self.loss_weights = loss_weights or LossWeights()
        self.attention_loss = attention_loss or AttentionLoss()
        self.hidden_loss = hidden_loss or HiddenStateLoss()
        self.embedding_loss = embedding_loss or EmbeddingLoss(
            getattr(self.hidden_loss, "mode", "official"))
        self.prediction_loss = prediction_loss or PredictionLoss()
        self.regression_loss = RegressionLoss()
        self.teacher_training = teacher_training
        self.regression_target = regression_target
        self.prediction_target = prediction_target

        count = 1 if projection == "shared" else s_config.num_layers + 1
        self.projections = [
            keras.layers.Dense(t_config.hidden_size, name=f"fit_dense_{i}",
                               dtype=self.dtype_policy)
            for i in range(count)]
        self._build_all()
        self.component_trackers = {
            name: keras.metrics.Mean(name=name) for name in self._metric_names()}

    # ------------------------------------------------------------ building

    def _build_all(self):
        """Builds every variable before `fit` (required under tf.distribute)."""
        inputs = dummy_inputs()
        self.teacher(inputs)
        self.student(inputs)
        for dense in self.projections:
            dense.build((None, None, self.student.config.hidden_size))
        self.built = True

    def _metric_names(self):
        names = ["loss"]
        if self.stage != "prediction":
            names += ["embedding_loss", "attention_loss", "hidden_loss"]
            for m in range(1, self.mapping.student_layers + 1):
                names += [f"attention_loss_{m}", f"hidden_loss_{m}"]
        if self.stage != "intermediate":
            names.append("prediction_loss")
        return names

    @property
    def metrics(self):
        return list(self.component_trackers.values())

    def project(self, m, hidden):
        dense = self.projections[0 if self.projection == "shared" else m]
        return dense(hidden)

    # ------------------------------------------------------------ losses

    def pruned_attention_loss(self, layer, student_scores, teacher_scores,
                              padding_mask):
        """The attention loss of student layer `layer` (0-based): a pruned
        student's remaining heads are compared with the teacher heads of
        the same original index (`BertConfig.layer_heads`); a layer without
        heads adds 0."""
        config = self.student.config
        heads = config.layer_heads(layer)
        if not heads:
            return ops.zeros((), "float32")
        if len(heads) != config.num_heads:
            teacher_scores = ops.take(teacher_scores, list(heads), axis=1)
        return self.attention_loss(student_scores, teacher_scores,
                                   padding_mask)

    def compute_losses(self, student_out, teacher_out, padding_mask,
                       labels=None):
        """All loss components as a dict of float32 scalars, `loss` the sum."""
        w = self.loss_weights
        losses = {}
        total = ops.zeros((), "float32")
        if self.stage != "prediction":
            s_hidden, t_hidden = (student_out["hidden_states"],
                                  teacher_out["hidden_states"])
            embedding = self.embedding_loss(
                self.project(0, s_hidden[0]), t_hidden[0], padding_mask)
            losses["embedding_loss"] = embedding
            total += w.embedding * embedding
            attention_sum = hidden_sum = ops.zeros((), "float32")
            for (s_att, t_att), (m, t_m) in zip(
                    self.mapping.attention_pairs(),
                    self.mapping.hidden_pairs(include_embeddings=False)):
                attention = self.pruned_attention_loss(
                    s_att, student_out["attention_scores"][s_att],
                    teacher_out["attention_scores"][t_att], padding_mask)
                hidden = self.hidden_loss(self.project(m, s_hidden[m]),
                                          t_hidden[t_m], padding_mask)
                losses[f"attention_loss_{m}"] = attention
                losses[f"hidden_loss_{m}"] = hidden
                attention_sum += w.layer(m) * attention
                hidden_sum += w.layer(m) * hidden
            losses["attention_loss"] = attention_sum
            losses["hidden_loss"] = hidden_sum
            total += w.attention * attention_sum + w.hidden * hidden_sum
        if self.stage != "intermediate":
            gold = self.prediction_target == "labels" or (
                self.student.is_regression and self.regression_target == "labels")
            if gold and labels is None:
                raise ValueError("A prediction layer that learns the gold "
                                 "labels needs them in the data.")
            if gold and not self.student.is_regression:
                prediction = ops.mean(keras.losses.sparse_categorical_crossentropy(
                    ops.cast(labels, "int32"),
                    ops.cast(student_out["logits"], "float32"), from_logits=True))
            elif self.student.is_regression:
                target = labels if gold else teacher_out["logits"]
                prediction = self.regression_loss(student_out["logits"], target)
            else:
                prediction = self.prediction_loss(student_out["logits"],
                                                  teacher_out["logits"])
            losses["prediction_loss"] = prediction
            total += w.prediction * prediction
        losses["loss"] = total
        return losses

    def _losses_for(self, data, training):
        inputs, labels, teacher_logits = keras.utils.unpack_x_y_sample_weight(
            data)
        if (self.stage == "prediction" and teacher_logits is not None
                and not self.teacher_training):
            # Computed once before the fit (`teacher_outputs`): only the
            # student runs.
            teacher_out = {"logits": tf.stop_gradient(teacher_logits)}
        else:
            teacher_out = self.teacher.features(
                inputs, training=self.teacher_training)
            teacher_out = tf.nest.map_structure(tf.stop_gradient, teacher_out)
        student_out = self.student.features(inputs, training=training)
        return self.compute_losses(student_out, teacher_out,
                                   inputs["padding_mask"], labels)

    def _record(self, losses):
        for name, tracker in self.component_trackers.items():
            tracker.update_state(losses[name])
        logs = {name: t.result() for name, t in self.component_trackers.items()}
        if is_multi_worker(tf.distribute.get_strategy()):
            # Keras MEAN-reduces step logs over axis 0 across workers, which
            # fails on scalars (tensorflow/tensorflow#72388).
            logs = {name: ops.reshape(value, (1,)) for name, value in logs.items()}
        return logs

    # ------------------------------------------------------------ steps

    @property
    def train_variables(self):
        """What this stage trains: the pooler and classifier get no gradient
        from the intermediate losses, the projections none from prediction."""
        student = self.student.trainable_variables
        if self.stage == "prediction":
            return student
        if self.stage == "intermediate":
            skip = {id(v) for layer in (getattr(self.student, "backbone",
                                                self.student).pooler,
                                        getattr(self.student, "classifier", None))
                    if layer is not None for v in layer.trainable_variables}
            student = [v for v in student if id(v) not in skip]
        return student + [v for dense in self.projections
                          for v in dense.trainable_variables]

    def compile(self, optimizer="adam", **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        # Built here, outside any replica context (tf.distribute needs it).
        self.optimizer.build(self.train_variables)

    def train_step(self, data):
        variables = self.train_variables
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            losses = self._losses_for(data, training=True)
            # Keras 3's TF optimizer sums gradients over replicas.
            loss = self.optimizer.scale_loss(losses["loss"] / replicas)
        # Keras takes an IndexedSlices' norm over its rows, a repeated token
        # id counted apart, so clipping would see a wrong embedding gradient.
        gradients = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices)
                     else g for g in tape.gradient(loss, variables)]
        if replicas > 1:
            gradients = self._reduce_before_clipping(gradients, replicas)
        self.optimizer.apply(gradients, variables)
        return self._record(losses)

    def _reduce_before_clipping(self, gradients, replicas):
        """Clips the summed gradient of all replicas, as one device would.

        Keras 3 clips (clipnorm / global_clipnorm / clipvalue) each replica's
        gradient BEFORE its all-reduce, and LossScaleOptimizer checks only the
        first replica's gradient for inf/NaN. So the gradient is summed here,
        clipped (loss scaling undone for that), and each replica hands the
        optimizer 1/replicas of it: the optimizer's own sum rebuilds the
        clipped gradient, and its clipping of a part is a no-op.
        """
        optimizer, scale = self.optimizer, None
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            optimizer, scale = optimizer.inner_optimizer, optimizer.dynamic_scale
        clips = optimizer.clipnorm or optimizer.global_clipnorm or optimizer.clipvalue
        if not clips and scale is None:
            return gradients
        present = [g for g in gradients if g is not None]
        summed = iter(tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, present))
        summed = [None if g is None else next(summed) for g in gradients]
        if clips:
            if scale is not None:
                summed = [None if g is None else g / scale for g in summed]
            summed = clip_gradients(summed, optimizer)
            if scale is not None:
                summed = [None if g is None else g * scale for g in summed]
        return [None if g is None else g / replicas for g in summed]

    def test_step(self, data):
        return self._record(self._losses_for(data, training=False))

    def call(self, inputs, training=None):
        return self.student.features(inputs, training=training)

    # ------------------------------------------------------------ saving

    def projection_weights(self):
        """The projections as HF-style tensors for `checkpoint.save`.

        Names follow the official code: `fit_dense.*` when shared,
        `fit_denses.{m}.*` per layer.
        """
        tensors = {}
        for i, dense in enumerate(self.projections):
            name = "fit_dense" if self.projection == "shared" else f"fit_denses.{i}"
            tensors[f"{name}.weight"] = dense.kernel.numpy().T
            tensors[f"{name}.bias"] = dense.bias.numpy()
        return tensors

    def load_projections(self, checkpoint):
        """Reuses projections saved with a student; returns True if loaded."""
        loaded = False
        for i, dense in enumerate(self.projections):
            name = "fit_dense" if self.projection == "shared" else f"fit_denses.{i}"
            kernel = checkpoint.weights.get(f"{name}.weight")
            if kernel is None or kernel.T.shape != tuple(dense.kernel.shape):
                continue
            dense.kernel.assign(kernel.T)
            dense.bias.assign(checkpoint.weights[f"{name}.bias"])
            loaded = True
        return loaded

    def describe(self):
        return (f"Distillation stage {self.stage!r}, projection "
                f"{self.projection!r}\n{self.mapping.describe()}")
