"""trainers.pipeline --prune: the optional stage between task and export."""

from trainers import pipeline


def test_prune_stage_sits_between_task_and_export():
    assert pipeline.stages_of() == pipeline.STAGES
    assert pipeline.stages_of(prune=True) == (
        "general", "task", "prune", "export", "report")
    assert pipeline.stages_to_redo(["prune"]) == {"prune", "export", "report"}
    assert pipeline.stages_to_redo(["task"], prune=True) == {
        "task", "prune", "export", "report"}
    assert "prune" not in pipeline.stages_to_redo(["all"])


def test_prune_and_export_commands():
    prune = pipeline.stage_command("prune", "out", "quick", False, {})
    assert prune[:2] == ["-m", "trainers.prune"]
    assert prune[prune.index("--student") + 1] == "out/task/student"
    assert prune[prune.index("--teacher") + 1] == "out/task/teacher"
    assert prune[prune.index("--output-dir") + 1] == "out/prune"
    assert "--quick" in prune and "--heads-keep" in prune
    export = pipeline.stage_command("export", "out", "quick", False, {},
                                    pruned=True)
    assert export[export.index("--checkpoint") + 1] == "out/prune/student"
    args = pipeline.parse_args(["--prune", "--prune-args", "--ffn-keep 0.25"])
    assert args.prune and pipeline.stage_flags(args)["prune"] == [
        "--ffn-keep", "0.25"]


def test_report_names_the_pruned_student_on_the_tflite_rows(tmp_path):
    import json
    from tinybert_tf import pruning
    rows = [{"model": "student (Keras, TinyBERT distilled)", "parameters": 50},
            {"model": "student TFLite dynamic_int8", "parameters": 50}]
    assert pruning.pipeline_rows(str(tmp_path), rows) == rows  # no --prune
    (tmp_path / "prune").mkdir()
    (tmp_path / "prune" / "prune_report.json").write_text(json.dumps({
        "parameters": {"after": 40},
        "removed": [{"heads_kept": [0, 3], "ffn_neurons_kept": 5},
                    {"heads_kept": [], "ffn_neurons_kept": 7}]}))
    out = pruning.pipeline_rows(str(tmp_path), rows)
    assert out[0] == rows[0]
    assert out[1] == {"model": "pruned student (heads 2/0, FFN 5/7) TFLite "
                               "dynamic_int8", "parameters": 40}
