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
    prune = pipeline.stage_command("prune", "out", "quick", False)
    assert prune[:2] == ["-m", "trainers.prune"]
    assert prune[prune.index("--student") + 1] == "out/task/student"
    assert prune[prune.index("--teacher") + 1] == "out/task/teacher"
    assert prune[prune.index("--output-dir") + 1] == "out/prune"
    assert "--quick" in prune and "--heads-keep" in prune
    export = pipeline.stage_command("export", "out", "quick", False,
                                    pruned=True)
    assert export[export.index("--checkpoint") + 1] == "out/prune/student"
    args = pipeline.parse_args(["--prune", "--prune-args", "--ffn-keep 0.25"])
    assert args.prune and pipeline.stage_flags(args)["prune"] == [
        "--ffn-keep", "0.25"]


def test_report_shows_the_pruned_students_row():
    from trainers import report
    scores = {"test": {"accuracy": 0.9}}
    task = {"primary_metric": "accuracy", "retention": {"test": 0.9},
            "examples": {"test": 10},
            "teacher": {**scores, "parameters": 100},
            "student": {**scores, "parameters": 50}, "baseline": None}
    pruned = {"parameters": {"after": 40},
              "scores": {"after_recovery": {"test": {"accuracy": 0.85}}}}
    export = {"eval_examples": 10, "variants": {"dynamic_int8": {
        "accuracy": 0.85, "size_mb": 1.0, "median_latency_ms": 1.0}}}
    rows = report.build_table(
        {"task": task, "export": export, "prune": pruned},
        {"teacher": 3, "student": 2, "pruned": 1},
        {"teacher": 3, "student": 2, "pruned": 2})
    assert [r["model"] for r in rows][2:] == [
        "pruned student (Keras, trainers.prune)",
        "pruned student TFLite dynamic_int8"]
    assert rows[2]["accuracy"] == 0.85 and rows[3]["parameters"] == 40
