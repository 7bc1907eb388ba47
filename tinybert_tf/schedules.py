"""Learning-rate schedule of BERT fine-tuning and TinyBERT: linear warm-up,
then linear decay to zero (or constant). The optimizers are in
`tinybert_tf.optimizers`.

Example:
>>> from tinybert_tf.schedules import WarmupLinearDecay
>>> schedule = WarmupLinearDecay(1e-3, total_steps=100, warmup_steps=10)
>>> [round(float(schedule(s)), 6) for s in (0, 5, 10, 55, 100)]
[0.0, 0.0005, 0.001, 0.0005, 0.0]
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tinybert_tf")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, peak_learning_rate, total_steps, warmup_steps=0,
                 decay=True):
        if total_steps <= 0 or warmup_steps < 0 or warmup_steps > total_steps:
            raise ValueError(f"Need 0 <= warmup_steps ({warmup_steps}) <= "
                             f"total_steps ({total_steps}), total_steps > 0.")
        self.peak_learning_rate = peak_learning_rate
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.decay = decay

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = ops.cast(self.peak_learning_rate, "float32")
        warmup = ops.cast(max(self.warmup_steps, 1), "float32")
        rising = peak * step / warmup
        if not self.decay:
            falling = peak
        else:
            span = ops.cast(max(self.total_steps - self.warmup_steps, 1), "float32")
            falling = peak * ops.maximum(
                0.0, (self.total_steps - step) / span)
        return ops.where(step < self.warmup_steps, rising, falling)

    def get_config(self):
        return {"peak_learning_rate": self.peak_learning_rate,
                "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "decay": self.decay}

