import json

import pytest

from tinybert_tf.layer_mapping import LayerMapping


def official_attention_pairs(teacher_layers, student_layers):
    """Index rule of the official TinyBERT code (uniform only)."""
    k = teacher_layers // student_layers
    return [(i, i * k + k - 1) for i in range(student_layers)]


def official_hidden_pairs(teacher_layers, student_layers):
    k = teacher_layers // student_layers
    return [(i, i * k) for i in range(student_layers + 1)]


@pytest.mark.parametrize("teacher_layers, student_layers", [(12, 4), (6, 3), (12, 6)])
def test_uniform_matches_official_indices(teacher_layers, student_layers):
    mapping = LayerMapping(student_layers, teacher_layers)
    assert mapping.attention_pairs() == official_attention_pairs(
        teacher_layers, student_layers
    )
    assert mapping.hidden_pairs() == official_hidden_pairs(
        teacher_layers, student_layers
    )


def test_uniform_12_to_4_spelled_out():
    mapping = LayerMapping(4, 12)
    assert mapping.attention_pairs() == [(0, 2), (1, 5), (2, 8), (3, 11)]
    assert mapping.hidden_pairs() == [(0, 0), (1, 3), (2, 6), (3, 9), (4, 12)]
    assert mapping.hidden_pairs(include_embeddings=False) == [
        (1, 3),
        (2, 6),
        (3, 9),
        (4, 12),
    ]


def test_embedding_and_prediction_layers():
    for strategy in ("uniform", "top", "bottom"):
        mapping = LayerMapping(3, 6, strategy=strategy)
        assert mapping.teacher_layer(0) == 0
        assert mapping.teacher_layer(4) == 7


def test_top_and_bottom():
    top = LayerMapping(4, 12, strategy="top")
    assert [top.teacher_layer(m) for m in range(1, 5)] == [9, 10, 11, 12]
    assert top.attention_pairs() == [(0, 8), (1, 9), (2, 10), (3, 11)]
    assert top.hidden_pairs() == [(0, 0), (1, 9), (2, 10), (3, 11), (4, 12)]
    bottom = LayerMapping(4, 12, strategy="bottom")
    assert bottom.attention_pairs() == [(0, 0), (1, 1), (2, 2), (3, 3)]
    assert bottom.hidden_pairs() == [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4)]


def test_top_and_bottom_work_when_not_divisible():
    assert LayerMapping(4, 6, strategy="top").attention_pairs()[-1] == (3, 5)
    assert LayerMapping(4, 6, strategy="bottom").attention_pairs()[-1] == (3, 3)


def test_equal_depth_is_identity_for_all_rules():
    for strategy in ("uniform", "top", "bottom"):
        mapping = LayerMapping(3, 3, strategy=strategy)
        assert mapping.hidden_pairs() == [(0, 0), (1, 1), (2, 2), (3, 3)]


def test_custom():
    mapping = LayerMapping(3, 6, strategy="custom", custom=[1, 4, 6])
    assert mapping.custom == (1, 4, 6)
    assert mapping.attention_pairs() == [(0, 0), (1, 3), (2, 5)]
    assert mapping.hidden_pairs() == [(0, 0), (1, 1), (2, 4), (3, 6)]
    assert mapping.teacher_layer(4) == 7


def test_custom_may_be_deeper_than_teacher():
    mapping = LayerMapping(4, 2, strategy="custom", custom=[1, 1, 2, 2])
    assert mapping.attention_pairs() == [(0, 0), (1, 0), (2, 1), (3, 1)]


def test_describe_lists_every_layer():
    text = LayerMapping(4, 12).describe()
    for m, n in [(1, 3), (2, 6), (3, 9), (4, 12)]:
        assert f"student layer {m} -> teacher layer {n}" in text
    assert "embeddings" in text and "prediction" in text
    assert "uniform" in text


@pytest.mark.parametrize(
    "mapping",
    [
        LayerMapping(4, 12),
        LayerMapping(4, 12, strategy="top"),
        LayerMapping(3, 6, strategy="custom", custom=[2, 3, 5]),
    ],
)
def test_dict_round_trip_through_json(mapping):
    config = json.loads(json.dumps(mapping.to_dict()))
    assert LayerMapping.from_dict(config) == mapping
    assert config["teacher_layer_of_student"] == [
        n for _, n in mapping.hidden_pairs(include_embeddings=False)
    ]


def test_from_dict_errors():
    with pytest.raises(ValueError, match="teacher_layers"):
        LayerMapping.from_dict({"student_layers": 4})
    config = LayerMapping(4, 12).to_dict()
    config["teacher_layer_of_student"] = [1, 2, 3, 4]
    with pytest.raises(ValueError, match="inconsistent"):
        LayerMapping.from_dict(config)


def test_frozen_and_hashable():
    mapping = LayerMapping(3, 6, strategy="custom", custom=[2, 4, 6])
    with pytest.raises(AttributeError):
        mapping.strategy = "top"
    assert hash(mapping) == hash(LayerMapping(3, 6, "custom", [2, 4, 6]))


def test_uniform_not_divisible_suggests_rounded_custom():
    with pytest.raises(ValueError) as error:
        LayerMapping(4, 6)
    message = str(error.value)
    assert "teacher_layers=6" in message and "student_layers=4" in message
    rounded = [round(m * 6 / 4) for m in range(1, 5)]
    assert f"custom={rounded}" in message
    assert "strategy='custom'" in message
    # The suggestion is accepted verbatim.
    LayerMapping(4, 6, strategy="custom", custom=rounded)


@pytest.mark.parametrize("strategy", ["uniform", "top", "bottom"])
def test_fewer_teacher_than_student_layers(strategy):
    with pytest.raises(ValueError, match="teacher_layers=2 < student_layers=4"):
        LayerMapping(4, 2, strategy=strategy)


def custom_kwargs(student_layers, custom):
    return dict(
        student_layers=student_layers,
        teacher_layers=12,
        strategy="custom",
        custom=custom,
    )


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(student_layers=0, teacher_layers=12), "student_layers"),
        (dict(student_layers=4, teacher_layers=-1), "teacher_layers"),
        (dict(student_layers=4.0, teacher_layers=12), "student_layers"),
        (dict(student_layers=True, teacher_layers=12), "student_layers"),
        (dict(student_layers=4, teacher_layers=12, strategy="middle"), "strategy"),
        (dict(student_layers=4, teacher_layers=12, strategy="custom"), "needs"),
        (
            dict(student_layers=4, teacher_layers=12, custom=[3, 6, 9, 12]),
            "only used with strategy='custom'",
        ),
        (
            custom_kwargs(4, [3, 6, 9]),
            "expected 4 entries",
        ),
        (
            custom_kwargs(2, [0, 6]),
            "student layer 1 is 0",
        ),
        (
            custom_kwargs(2, [6, 13]),
            r"1\.\.12",
        ),
        (
            custom_kwargs(2, [6, 7.0]),
            "must be an int",
        ),
        (
            custom_kwargs(2, "36"),
            "list of 2 ints",
        ),
    ],
)
def test_invalid_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        LayerMapping(**kwargs)


@pytest.mark.parametrize("student_layer", [-1, 6, 2.0, None])
def test_teacher_layer_out_of_range(student_layer):
    with pytest.raises(ValueError, match=r"0\.\.5"):
        LayerMapping(4, 12).teacher_layer(student_layer)
