"""The choices of a distillation run as plain values, and their parsing.

`DistillationOptions` holds what both general and task distillation choose
(layer mapping, projection, loss modes and weights, temperature) and builds
the `Distiller` of a stage from them. `parse_loss_weights` and
`parse_layer_mapping` read the compact text forms the command lines take
("1,1,1" and "1=0.5,3=2"; "2,4,6").

Example:
>>> from tinybert_tf.distillation_options import (DistillationOptions,
...     parse_layer_mapping, parse_loss_weights)
>>> weights = parse_loss_weights("1,0.5,2", "1=0.5,3=2")
>>> (weights.attention, weights.layers)
(0.5, {1: 0.5, 3: 2.0})
>>> parse_layer_mapping(2, 6, "custom", "2,6").custom
(2, 6)
>>> options = DistillationOptions(loss_weights=weights, projection="per_layer")
>>> options.mapping(3, 6).strategy
'uniform'
"""

import dataclasses

from tinybert_tf.distiller import LossWeights
from tinybert_tf.layer_mapping import LayerMapping


def parse_loss_weights(loss_weights="1,1,1", layer_weights=""):
    """`LossWeights` of "embedding,attention,hidden[,prediction]" and
    "m=w,m=w" texts (the prediction weight counts in stage "all" only)."""
    try:
        parts = [float(x) for x in loss_weights.split(",")]
        layers = {int(m): float(w) for m, w in (
            item.split("=") for item in filter(None, layer_weights.split(",")))}
    except ValueError:
        raise ValueError(
            f"--loss-weights {loss_weights!r} / --layer-weights "
            f"{layer_weights!r}: expected 3 numbers embedding,attention,"
            "hidden and items layer=weight, e.g. 1=0.5,3=2.") from None
    if len(parts) not in (3, 4):
        raise ValueError(f"--loss-weights {loss_weights!r}: expected 3 "
                         "numbers embedding,attention,hidden (and a 4th, "
                         "prediction, for --intermediate-stage all).")
    return LossWeights(*parts, layers=layers)


def parse_layer_mapping(student_layers, teacher_layers, strategy="uniform",
                        custom_layers=None):
    """The `LayerMapping` of a strategy name and, for "custom", a text such
    as "2,4,6" (or a list of ints): the teacher layer of each student layer."""
    custom = custom_layers or None
    if isinstance(custom, str):
        try:
            custom = [int(x) for x in custom.split(",")]
        except ValueError:
            raise ValueError(f"--custom-layers {custom_layers!r}: expected "
                             "teacher layers such as 2,4,6.") from None
    return LayerMapping(student_layers, teacher_layers, strategy, custom)


@dataclasses.dataclass(frozen=True)
class DistillationOptions:
    """What a distillation run chooses besides its data and schedule.

    Args:
        mapping_strategy, custom_layers: the layer mapping
            (`parse_layer_mapping`).
        projection: "shared" or "per_layer" (`Distiller`).
        attention_loss, hidden_loss: "official" or "exact" loss modes.
        loss_weights: a `LossWeights`.
        temperature, prediction_reduction: the prediction-layer loss.
        teacher_training: the teacher runs with dropout (official scripts).
        regression_target, prediction_target: "teacher" or "labels"
            (`Distiller`).
    """

    mapping_strategy: str = "uniform"
    custom_layers: object = None
    projection: str = "shared"
    attention_loss: str = "official"
    hidden_loss: str = "official"
    loss_weights: LossWeights = dataclasses.field(default_factory=LossWeights)
    temperature: float = 1.0
    prediction_reduction: str = "official"
    teacher_training: bool = False
    regression_target: str = "teacher"
    prediction_target: str = "teacher"

    def mapping(self, student_layers, teacher_layers):
        return parse_layer_mapping(student_layers, teacher_layers,
                                   self.mapping_strategy, self.custom_layers)

    def distiller(self, teacher, student, stage="intermediate"):
        """The `Distiller` of `stage`; its constructor checks the pair
        (vocabulary, attention heads for the layer losses, labels, mapping)."""
        from tinybert_tf.distiller import Distiller
        from tinybert_tf.losses import (AttentionLoss, HiddenStateLoss,
                                        PredictionLoss)
        return Distiller(
            teacher, student,
            mapping=self.mapping(student.config.num_layers,
                                 teacher.config.num_layers),
            stage=stage, projection=self.projection,
            loss_weights=self.loss_weights,
            attention_loss=AttentionLoss(self.attention_loss),
            hidden_loss=HiddenStateLoss(self.hidden_loss),
            prediction_loss=PredictionLoss(self.temperature,
                                           self.prediction_reduction),
            teacher_training=self.teacher_training,
            regression_target=self.regression_target,
            prediction_target=self.prediction_target)
