"""The attention mask constant of the export, chosen and checked.

BERT adds -10000 to the attention scores of padded keys; in a full-integer
model that stretches the int8 range of the scores so that every real score
rounds to the same value. The export therefore uses a small constant:
`quantize.EXPORT_MASK_VALUE` (-30, the one QAT trains with) or, should that
change the float model's probabilities by more than `MASK_VALUE_TOLERANCE`,
the next of `MASK_VALUE_CANDIDATES`.

Example:

```python
from export import mask_value
value, effect = mask_value.choose_mask_value("runs/bbc/student", eval_inputs)
model = mask_value.model_with_mask("runs/bbc/student", value)
```
"""

import numpy as np

from export.quantize import EXPORT_MASK_VALUE
from export.runtimes import keras_probabilities

# Stronger constants to fall back on, should EXPORT_MASK_VALUE change the
# float outputs.
FALLBACK_MASK_VALUES = (-64.0, -128.0, -1000.0)
# Candidate attention-mask constants for the export, smallest magnitude first
# (a small one keeps the int8 range of the attention scores useful).
MASK_VALUE_CANDIDATES = (EXPORT_MASK_VALUE,) + tuple(
    value for value in FALLBACK_MASK_VALUES if value < EXPORT_MASK_VALUE)
MASK_VALUE_TOLERANCE = 1e-4


def model_with_mask(checkpoint_source, mask_value=None):
    """The checkpoint's BertClassifier with attention mask constant
    `mask_value` (None: the trained one)."""
    from tinybert_tf import checkpoint

    if mask_value is None:
        return checkpoint.load_classifier(checkpoint_source)
    return checkpoint.load_classifier(checkpoint_source,
                                      attention_mask_value=mask_value)


def mask_value_effect(checkpoint_source, inputs, mask_value, reference=None):
    """Max |probability change| of the float model when the attention mask
    constant becomes `mask_value` (on `inputs`)."""
    if reference is None:
        reference = keras_probabilities(model_with_mask(checkpoint_source),
                                        inputs)
    changed = model_with_mask(checkpoint_source, mask_value)
    return float(np.max(np.abs(keras_probabilities(changed, inputs)
                               - reference)))


def choose_mask_value(checkpoint_source, inputs, reference=None,
                      candidates=MASK_VALUE_CANDIDATES,
                      tolerance=MASK_VALUE_TOLERANCE):
    """The smallest-magnitude mask constant that leaves the float model's
    probabilities within `tolerance` on `inputs`; returns (value, effect)."""
    effects = {}
    for value in candidates:
        effects[value] = mask_value_effect(checkpoint_source, inputs, value,
                                           reference)
        if effects[value] <= tolerance:
            return value, effects[value]
    raise ValueError(f"No attention mask constant among {candidates} keeps the"
                     f" float outputs within {tolerance}: {effects}.")
