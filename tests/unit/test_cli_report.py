"""What `seqlane local run`, `demo` and `plan` print: statuses, the accounting line, re-analysed samples, conflicts."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from seqlane.cli import _report, app

RUN = "241122_LH00123_0099_AREPORT"


def _summary(**fields) -> dict:
    summary = {
        "run_id": RUN,
        "region": "eu-west-2",
        "samples": [],
        "ignored": [],
        "events": [],
        "accounting": {
            "uploaded": 6,
            "in_manifests": 3,
            "ignored": 1,
            "in_conflict": 2,
            "balanced": True,
            "unaccounted": [],
        },
        "rerun": [],
        "dead_letters": 0,
        "log": "/tmp/seqlane-local.log",
        "wall_seconds": 1.0,
    }
    return summary | fields


def _sample(sample_id: str, status: str, error: str | None = None) -> dict:
    return {"sample_id": sample_id, "status": status, "outputs": [], "metrics": {}, "engine": None, "error": error}


def _printed(summary: dict) -> str:
    out = io.StringIO()
    _report(summary, False, Console(file=out, width=250, color_system=None))
    return out.getvalue()


@pytest.mark.parametrize("status", ["FAILED", "TIMED_OUT", "ABORTED", "CONFLICT", "SUCCEEDED", "INCOMPLETE"])
def test_report_shows_every_sample_status(status):
    # Given a summary with a sample in this status
    summary = _summary(samples=[_sample("S1", status, None if status == "SUCCEEDED" else "why")])

    # When it is printed as tables / Then the status is shown (no status is unknown to the view)
    assert status in _printed(summary)


def test_report_prints_one_accounting_line_when_balanced():
    # Given a balanced accounting
    # When the summary is printed
    printed = _printed(_summary())

    # Then one line says where the uploads went
    assert "Accounted for: 6 uploaded = 3 in manifests + 1 ignored + 2 in conflict\n" in printed
    assert "unaccounted" not in printed


def test_report_names_the_unaccounted_files_when_not_balanced():
    # Given an accounting with one upload the pipeline never recorded
    accounting = {
        "uploaded": 3,
        "in_manifests": 2,
        "ignored": 0,
        "in_conflict": 0,
        "balanced": False,
        "unaccounted": [f"{RUN}/lost.fastq.gz"],
    }

    # When the summary is printed / Then the line names it
    printed = _printed(_summary(accounting=accounting))
    assert (
        f"Accounted for: 3 uploaded = 2 in manifests + 0 ignored + 0 in conflict; unaccounted: {RUN}/lost.fastq.gz"
        in (printed)
    )


def test_report_prints_one_line_per_reanalysed_sample():
    # Given a run that re-analysed two samples
    rerun = [
        {
            "sample_id": "S1",
            "attempt": 2,
            "previous_status": "FAILED",
            "previous_reason": "S1 L001: R1 has 9, R2 has 6",
        },
        {"sample_id": "S2", "attempt": 3, "previous_status": "TIMED_OUT", "previous_reason": None},
    ]

    # When the summary is printed
    printed = _printed(_summary(rerun=rerun))

    # Then each has its line, with its attempt and why its last analysis ended
    assert "Re-analysed S1 as attempt 2 (its last analysis was FAILED: S1 L001: R1 has 9, R2 has 6)\n" in printed
    assert "Re-analysed S2 as attempt 3 (its last analysis was TIMED_OUT: no reason recorded)\n" in printed


def test_report_without_reanalysis_prints_no_such_line():
    # Given a run that re-analysed nothing / When printed / Then no line says so
    assert "Re-analysed" not in _printed(_summary())


def test_report_json_is_the_summary_object(capsys):
    # Given a summary with accounting and re-analysis
    summary = _summary(rerun=[{"sample_id": "S1", "attempt": 2, "previous_status": "FAILED", "previous_reason": "x"}])

    # When it is printed as JSON
    _report(summary, True, Console(file=io.StringIO()))

    # Then stdout is exactly the summary, and nothing else
    assert json.loads(capsys.readouterr().out) == summary


def test_cli_plan_shows_status_conflict_and_accounting(tmp_path):
    # Given a run folder where one Sample_ID comes under two S-numbers for L001 R1, next to a complete sample
    run_dir = tmp_path / RUN
    run_dir.mkdir()
    for name in (
        "Clash_S1_L001_R1_001.fastq.gz",
        "Clash_S7_L001_R1_001.fastq.gz",
        "Clash_S1_L001_R2_001.fastq.gz",
        "Fine_S2_L001_R1_001.fastq.gz",
        "Fine_S2_L001_R2_001.fastq.gz",
    ):
        (run_dir / name).write_bytes(b"x")
    (run_dir / "CopyComplete.txt").write_bytes(b"")

    # When it is planned, as tables
    result = CliRunner().invoke(app, ["plan", str(run_dir)], env={"COLUMNS": "300"})

    # Then each sample's status is shown, the conflict's reason names both files, and the uploads are accounted for
    assert result.exit_code == 0, result.output
    clash = next(line for line in result.output.splitlines() if "Clash " in line)
    assert "CONFLICT" in clash and "one Sample_ID under S1, S7" in clash
    assert f"{RUN}/Clash_S1_L001_R1_001.fastq.gz, {RUN}/Clash_S7_L001_R1_001.fastq.gz" in clash
    assert "MANIFESTED" in next(line for line in result.output.splitlines() if "Fine " in line)
    assert "Accounted for: 5 uploaded = 2 in manifests + 0 ignored + 3 in conflict" in result.output
