"""Which teacher layer each student layer learns from (TinyBERT's n = g(m)).

Paper notation: the student has M Transformer layers, the teacher N. Layer 0 is
the embedding layer and layer M+1 (N+1 for the teacher) the prediction layer, so
g(0) = 0 and g(M+1) = N+1 always. Student layers 1..M follow a strategy:

- "uniform": g(m) = m * N / M (the paper's best; the only one the official code
  has; N must be a multiple of M),
- "top": g(m) = m + N - M (the last M teacher layers),
- "bottom": g(m) = m (the first M teacher layers),
- "custom": an explicit list of M teacher layers (1-based).

Example:

```python
mapping = LayerMapping(student_layers=4, teacher_layers=12)
mapping.attention_pairs()  # [(0, 2), (1, 5), (2, 8), (3, 11)]
mapping.hidden_pairs()     # [(0, 0), (1, 3), (2, 6), (3, 9), (4, 12)]
print(mapping.describe())
```
"""

import dataclasses

MAPPING_STRATEGIES = ("uniform", "top", "bottom", "custom")


def _check_layer_count(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive int, got {value!r}.")


@dataclasses.dataclass(frozen=True)
class LayerMapping:
    """Maps the M student layers onto the N teacher layers.

    Args:
        student_layers: M, the number of Transformer layers of the student.
        teacher_layers: N, the number of Transformer layers of the teacher.
        strategy: one of "uniform", "top", "bottom", "custom".
        custom: for strategy "custom" only, the teacher layer (1-based, in
            1..N) of each student layer 1..M, e.g. `[2, 4, 6]`.

    Example:

    ```python
    LayerMapping(4, 12, strategy="top").attention_pairs()
    # [(0, 8), (1, 9), (2, 10), (3, 11)]
    LayerMapping(2, 6, strategy="custom", custom=[2, 6]).teacher_layer(1)  # 2
    ```
    """

    student_layers: int
    teacher_layers: int
    strategy: str = "uniform"
    custom: tuple = None

    def __post_init__(self):
        _check_layer_count("student_layers", self.student_layers)
        _check_layer_count("teacher_layers", self.teacher_layers)
        if self.strategy not in MAPPING_STRATEGIES:
            raise ValueError(
                f"Unknown layer mapping `strategy` {self.strategy!r}; "
                f"expected one of {MAPPING_STRATEGIES}."
            )
        if self.strategy == "custom":
            self._check_custom()
            # A tuple keeps the frozen dataclass hashable and immutable.
            object.__setattr__(self, "custom", tuple(self.custom))
        else:
            self._check_rule_based()

    def _check_custom(self):
        M, N = self.student_layers, self.teacher_layers
        if self.custom is None:
            raise ValueError(
                "Layer mapping strategy 'custom' needs `custom`, the list of "
                f"the {M} teacher layers (1-based) the student layers 1..{M} "
                "learn from."
            )
        if isinstance(self.custom, (str, bytes)) or not hasattr(
            self.custom, "__len__"
        ):
            raise ValueError(
                f"`custom` must be a list of {M} ints, got {self.custom!r}."
            )
        if len(self.custom) != M:
            raise ValueError(
                f"`custom` must list one teacher layer per student layer: "
                f"expected {M} entries (student_layers={M}), got "
                f"{len(self.custom)}: {list(self.custom)}."
            )
        for position, layer in enumerate(self.custom, start=1):
            if isinstance(layer, bool) or not isinstance(layer, int):
                raise ValueError(
                    f"`custom` entry for student layer {position} must be an "
                    f"int, got {layer!r}."
                )
            if not 1 <= layer <= N:
                raise ValueError(
                    f"`custom` entry for student layer {position} is {layer}; "
                    f"teacher layers are 1-based and must lie in 1..{N} "
                    f"(teacher_layers={N})."
                )

    def _check_rule_based(self):
        M, N = self.student_layers, self.teacher_layers
        if self.custom is not None:
            raise ValueError(
                f"`custom` is only used with strategy='custom', got "
                f"strategy={self.strategy!r} and custom={self.custom!r}."
            )
        if N < M:
            raise ValueError(
                f"Strategy {self.strategy!r} needs at least as many teacher "
                f"layers as student layers, got teacher_layers={N} < "
                f"student_layers={M}. Use strategy='custom' to map several "
                "student layers onto the same teacher layer."
            )
        if self.strategy == "uniform" and N % M != 0:
            rounded = [round(m * N / M) for m in range(1, M + 1)]
            raise ValueError(
                f"Uniform mapping g(m) = m * N / M needs teacher_layers={N} "
                f"to be a multiple of student_layers={M} (N / M = {N / M:g}). "
                f"Pass strategy='custom', custom={rounded} to use the rounded "
                "uniform mapping, or choose another strategy."
            )

    def teacher_layer(self, student_layer):
        """g(m): the teacher layer of student layer m, for m in 0..M+1.

        0 is the embedding layer, M+1 the prediction layer (-> N+1).
        """
        M, N = self.student_layers, self.teacher_layers
        m = student_layer
        if isinstance(m, bool) or not isinstance(m, int) or not 0 <= m <= M + 1:
            raise ValueError(
                f"`student_layer` must be an int in 0..{M + 1} (0 = embeddings, "
                f"{M + 1} = prediction layer), got {student_layer!r}."
            )
        if m == 0:
            return 0
        if m == M + 1:
            return N + 1
        if self.strategy == "uniform":
            return m * (N // M)
        if self.strategy == "top":
            return m + N - M
        if self.strategy == "bottom":
            return m
        return self.custom[m - 1]

    def attention_pairs(self):
        """(student, teacher) 0-based indices into the lists of attention scores.

        One pair per student Transformer layer: (m - 1, g(m) - 1), m = 1..M.
        """
        return [
            (m - 1, self.teacher_layer(m) - 1)
            for m in range(1, self.student_layers + 1)
        ]

    def hidden_pairs(self, include_embeddings=True):
        """(student, teacher) indices into the L + 1 hidden states.

        Index 0 is the embedding output, so the pairs are (m, g(m)) for
        m = 0..M. The first pair, (0, 0), is the embedding loss; pass
        `include_embeddings=False` to get the Transformer layers only.
        """
        first = 0 if include_embeddings else 1
        return [
            (m, self.teacher_layer(m))
            for m in range(first, self.student_layers + 1)
        ]

    def describe(self):
        """A few human readable lines, one per mapped layer."""
        M, N = self.student_layers, self.teacher_layers
        lines = [
            f"Layer mapping ({self.strategy}): student {M} layers -> "
            f"teacher {N} layers",
            "  student embeddings -> teacher embeddings",
        ]
        for m in range(1, M + 1):
            lines.append(
                f"  student layer {m} -> teacher layer {self.teacher_layer(m)}"
            )
        lines.append("  student prediction layer -> teacher prediction layer")
        return "\n".join(lines)

    def to_dict(self):
        """A JSON-ready dict; `teacher_layer_of_student` lists g(1..M)."""
        return {
            "strategy": self.strategy,
            "student_layers": self.student_layers,
            "teacher_layers": self.teacher_layers,
            "custom": None if self.custom is None else list(self.custom),
            "teacher_layer_of_student": [
                self.teacher_layer(m) for m in range(1, self.student_layers + 1)
            ],
        }

    @classmethod
    def from_dict(cls, config):
        """Rebuilds a mapping from `to_dict()` output.

        `teacher_layer_of_student`, when present, must agree with the rebuilt
        mapping (it catches hand edits of one field but not the other).
        """
        missing = [
            key for key in ("student_layers", "teacher_layers") if key not in config
        ]
        if missing:
            raise ValueError(
                f"Layer mapping dict lacks {missing}; got keys {sorted(config)}."
            )
        mapping = cls(
            student_layers=config["student_layers"],
            teacher_layers=config["teacher_layers"],
            strategy=config.get("strategy", "uniform"),
            custom=config.get("custom"),
        )
        expected = config.get("teacher_layer_of_student")
        actual = mapping.to_dict()["teacher_layer_of_student"]
        if expected is not None and list(expected) != actual:
            raise ValueError(
                f"Layer mapping dict is inconsistent: teacher_layer_of_student="
                f"{list(expected)} but strategy {mapping.strategy!r} gives "
                f"{actual}."
            )
        return mapping
