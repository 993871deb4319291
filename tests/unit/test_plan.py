"""`seqlane plan`: the ingest code's own decisions on a local run folder, without starting anything."""

from __future__ import annotations

import json

import pytest

from seqlane.local.plan import PlanSourceError, local_objects, plan

RUN = "241122_LH00123_0099_AMESSY"
SHEET = """[Header]
FileFormatVersion,2

[Reads]
Read1Cycles,151
Read2Cycles,151

[BCLConvert_Data]
Lane,Sample_ID,Index
1,S-1,AAAA
2,S-1,AAAA
1,S.2,CCCC
2,S.2,CCCC
1,S-3,GGGG

[Seqlane_Data]
Sample_ID,Modality
S.2,somatic-wgs
"""


@pytest.fixture
def run_dir(tmp_path):
    """A real-looking run folder: a project folder, a sample missing one read, a declared sample never written,
    an index read, Undetermined reads, a checksum sidecar and a report."""
    root = tmp_path / RUN
    project = root / "Project_A"
    project.mkdir(parents=True)
    for sample, number in (("S-1", 1), ("S.2", 2)):
        for lane in (1, 2):
            for read in (1, 2):
                (project / f"{sample}_S{number}_L00{lane}_R{read}_001.fastq.gz").write_bytes(b"x")
    (project / "S.2_S2_L002_R2_001.fastq.gz").unlink()
    (project / "S-1_S1_L001_I1_001.fastq.gz").write_bytes(b"x")
    (root / "Undetermined_S0_L001_R1_001.fastq.gz").write_bytes(b"x")
    (project / "S-1_S1_L001_R1_001.fastq.gz.md5").write_text("abc\n")
    (root / "Reports").mkdir()
    (root / "Reports" / "Demultiplex_Stats.csv").write_text("x\n")
    (root / "SampleSheet.csv").write_text(SHEET)
    return root


def test_plan_reports_samples_missing_reads_modality_and_ignored_files(run_dir):
    # Given a run folder with its sample sheet and no completion marker
    # When it is planned
    result = plan(local_objects(run_dir))
    assert result["closed_by_marker"] is False

    # Then the run id is the folder's name, and every declared sample is listed
    assert result["run_id"] == RUN
    samples = {s["sample_id"]: s for s in result["samples"]}
    assert sorted(samples) == ["S-1", "S-3", "S.2"]
    # And the complete sample has one fastq-list row per lane, pointing at the local files
    assert samples["S-1"]["complete"] is True and samples["S-1"]["missing"] == []
    rows = samples["S-1"]["fastq_list"]
    assert [(r["RGID"], r["Lane"]) for r in rows] == [(f"{RUN}.S-1.1", "1"), (f"{RUN}.S-1.2", "2")]
    assert rows[0]["Read1File"] == str(run_dir / "Project_A" / "S-1_S1_L001_R1_001.fastq.gz")
    # And the incomplete ones say what is missing; the sheet's modality is used
    assert (samples["S.2"]["complete"], samples["S.2"]["missing"], samples["S.2"]["modality"]) == (
        False,
        ["L002 R2"],
        "somatic-wgs",
    )
    assert samples["S-3"]["missing"] == ["L001 R1", "L001 R2"] and samples["S-3"]["fastq_list"] == []
    # And each ignored file has its reason
    reasons = {entry["key"].split("/", 1)[1]: entry["reason"] for entry in result["ignored"]}
    assert "index read" in reasons["Project_A/S-1_S1_L001_I1_001.fastq.gz"]
    assert "Undetermined" in reasons["Undetermined_S0_L001_R1_001.fastq.gz"]
    assert "checksum sidecar" in reasons["Project_A/S-1_S1_L001_R1_001.fastq.gz.md5"]
    assert "Reports/" in reasons["Reports/Demultiplex_Stats.csv"]


def test_plan_with_marker_and_no_sheet_closes_the_run_with_what_arrived(run_dir):
    # Given the same folder without its sheet, closed by a completion marker
    (run_dir / "SampleSheet.csv").unlink()
    (run_dir / "CopyComplete.txt").write_text("")

    # When it is planned
    result = plan(local_objects(run_dir))

    # Then the samples that arrived are planned (S-3 is unknown without the sheet), and the default modality holds
    samples = {s["sample_id"]: s for s in result["samples"]}
    assert sorted(samples) == ["S-1", "S.2"]
    assert result["closed_by_marker"] is True
    assert samples["S-1"]["complete"] and samples["S.2"]["missing"] == ["L002 R2"]
    assert {s["modality"] for s in samples.values()} == {"germline-wgs"}


def test_plan_malformed_sheet_is_reported_with_line_and_section(run_dir):
    # Given a sheet with an unusable lane
    (run_dir / "SampleSheet.csv").write_text(SHEET.replace("1,S-3,GGGG", "L1,S-3,GGGG"))
    # When planned, Then the sheet error names its line and section, and nothing is declared by it
    result = plan(local_objects(run_dir))
    assert "line 14" in result["sample_sheet"]["error"] and "BCLConvert_Data" in result["sample_sheet"]["error"]
    assert "S-3" not in {s["sample_id"] for s in result["samples"]}


def test_plan_refuses_a_missing_folder(tmp_path):
    with pytest.raises(PlanSourceError, match="does not exist"):
        local_objects(tmp_path / "nope")


def test_plan_s3_source_is_listed_from_its_run_folder(run_dir, aws_credentials):
    import boto3
    from moto import mock_aws

    from seqlane.local.plan import s3_objects

    # Given the run folder uploaded under a deeper prefix of a bucket
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-2")
        s3.create_bucket(Bucket="lab", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
        for path in (p for p in run_dir.rglob("*") if p.is_file()):
            s3.put_object(
                Bucket="lab", Key=f"sequencer1/{RUN}/{path.relative_to(run_dir).as_posix()}", Body=path.read_bytes()
            )
        # When it is listed as a plan source
        objects = s3_objects(f"s3://lab/sequencer1/{RUN}/")

    # Then keys start at the run folder, locations are the real URIs, and only the sheet was read
    sheet = next(o for o in objects if o.key == f"{RUN}/SampleSheet.csv")
    assert sheet.location == f"s3://lab/sequencer1/{RUN}/SampleSheet.csv" and sheet.body == SHEET.encode()
    assert all(o.key.startswith(f"{RUN}/") for o in objects)
    assert [o.body for o in objects if o is not sheet] == [None] * (len(objects) - 1)
    # And the plan is the same as for the local folder, with S3 URIs instead of local paths in the fastq-list
    from_s3, from_folder = plan(objects), plan(local_objects(run_dir))
    rows = next(s for s in from_s3["samples"] if s["sample_id"] == "S-1")["fastq_list"]
    assert rows[0]["Read1File"] == f"s3://lab/sequencer1/{RUN}/Project_A/S-1_S1_L001_R1_001.fastq.gz"
    as_s3 = json.dumps(from_folder).replace(str(run_dir), f"s3://lab/sequencer1/{RUN}")
    assert from_s3 == json.loads(as_s3)


def test_plan_s3_source_without_a_run_folder_is_refused():
    from seqlane.local.plan import s3_objects

    with pytest.raises(PlanSourceError, match="does not name a run folder"):
        s3_objects("s3://lab/")


def test_plan_reports_the_accounting_of_every_uploaded_key(run_dir):
    # Given the run folder with its sheet (no marker): S-1 complete, S.2 missing a read, four ignored files
    # When planned
    accounting = plan(local_objects(run_dir))["accounting"]
    # Then S-1's four files are in a manifest, four are ignored, and S.2's three wait: not balanced, named
    assert {k: accounting[k] for k in ("uploaded", "in_manifests", "ignored", "in_conflict")} == {
        "uploaded": 11,
        "in_manifests": 4,
        "ignored": 4,
        "in_conflict": 0,
    }
    assert accounting["balanced"] is False
    assert [key.rsplit("/", 1)[1] for key in accounting["unaccounted"]] == [
        "S.2_S2_L001_R1_001.fastq.gz",
        "S.2_S2_L001_R2_001.fastq.gz",
        "S.2_S2_L002_R1_001.fastq.gz",
    ]


def test_plan_reports_a_conflict_with_both_keys_and_balances(run_dir):
    # Given S.2's missing read written, and S-1's L001 R1 also written lane-merged
    (run_dir / "Project_A" / "S.2_S2_L002_R2_001.fastq.gz").write_bytes(b"x")
    (run_dir / "Project_A" / "S-1_S1_R1_001.fastq.gz").write_bytes(b"x")
    (run_dir / "SampleSheet.csv").write_text(SHEET.replace("1,S-3,GGGG\n", ""))
    # When planned
    result = plan(local_objects(run_dir))
    samples = {s["sample_id"]: s for s in result["samples"]}
    # Then S-1 is CONFLICT naming both keys, S.2 is complete, and every key is accounted for
    assert samples["S-1"]["status"] == "CONFLICT" and samples["S-1"]["complete"] is False
    [conflict] = samples["S-1"]["conflicts"]
    assert conflict["slot"] == "L001 R1"
    assert [key.rsplit("/", 1)[1] for key in conflict["keys"]] == [
        "S-1_S1_L001_R1_001.fastq.gz",
        "S-1_S1_R1_001.fastq.gz",
    ]
    assert samples["S.2"]["status"] == "MANIFESTED" and samples["S.2"]["conflicts"] == []
    assert result["accounting"] | {"unaccounted": None} == {
        "uploaded": 13,
        "in_manifests": 4,
        "ignored": 4,
        "in_conflict": 5,
        "balanced": True,
        "unaccounted": None,
    }


def test_plan_non_utf8_sheet_is_rejected_with_its_name_and_byte_offset(run_dir):
    # Given the sheet saved as Latin-1 with an accented project name on its last line
    (run_dir / "SampleSheet.csv").write_bytes((SHEET + "[Cloud_Data]\nProjectName\nJos\u00e9\n").encode("latin-1"))
    # When planned / Then the sheet error names the file and the first byte that is not UTF-8
    error = plan(local_objects(run_dir))["sample_sheet"]["error"]
    assert error.startswith(f"{RUN}/SampleSheet.csv: not UTF-8 text: byte 0xe9 at byte offset ")
