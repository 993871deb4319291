"""The public sample sheets in ../shared/data/real/samplesheets/ (see its SOURCES.md), each laid out as its
demultiplexer writes FASTQs, planned by the ingest code: every declared sample complete, none invented, every key
accounted for. The sheets are read where they are, never copied into the repository; skipped when absent."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from seqlane.local.plan import local_objects, plan
from seqlane.samplesheet import SampleSheet, parse_sample_sheet
from tests.conftest import ROOT

REAL_SHEETS = ROOT.parent / "shared" / "data" / "real" / "samplesheets"
SHEETS = sorted(REAL_SHEETS.rglob("*.csv")) if REAL_SHEETS.is_dir() else []
FASTQ = gzip.compress(b"@r1\nACGT\n+\nIIII\n")

pytestmark = pytest.mark.skipif(not SHEETS, reason=f"{REAL_SHEETS} is absent")


def demultiplexed_paths(sheet: SampleSheet) -> dict[str, list[str]]:
    """Each sample's FASTQ paths as its demultiplexer writes them: BCL Convert (v2) `[<Sample_Project>/]<Sample_ID>_`,
    bcl2fastq (v1) `[<Sample_Project>/][<Sample_ID>/]<Sample_Name>_` (the folder when the two differ); S<n> in order of
    first appearance; the sheet's lanes (lane 1 without a Lane column); R2 when paired."""
    paths = {}
    for number, sample in enumerate(sheet.samples, start=1):
        folder = f"{sample.project}/" if sample.project else ""
        if sample.file_name != sample.sample_id:
            folder += f"{sample.sample_id}/"
        reads = (1, 2) if sheet.paired else (1,)
        paths[sample.sample_id] = [
            f"{folder}{sample.file_name}_S{number}_L{lane:03d}_R{read}_001.fastq.gz"
            for lane in sorted(sample.lanes or {1})
            for read in reads
        ]
    return paths


@pytest.mark.parametrize("source", SHEETS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_plan_real_sample_sheet_laid_out_by_its_demultiplexer_is_complete(tmp_path, source):
    # Given a run folder with the public sheet, tiny FASTQs where its demultiplexer writes them, and a marker
    data = source.read_bytes()
    sheet = parse_sample_sheet(data.decode(), name=source.name)
    run_dir = tmp_path / f"RUN_{source.stem}"
    run_dir.mkdir()
    (run_dir / "SampleSheet.csv").write_bytes(data)
    (run_dir / "CopyComplete.txt").write_bytes(b"")
    layout = demultiplexed_paths(sheet)
    for path in (run_dir / p for paths in layout.values() for p in paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(FASTQ)

    # When planned
    result = plan(local_objects(run_dir))

    # Then the sheet was read, every declared sample is complete with its files, and no other sample appears
    assert result["sample_sheet"]["error"] is None
    samples = {s["sample_id"]: s for s in result["samples"]}
    assert sorted(samples) == sorted(layout)
    for sample_id, paths in layout.items():
        assert samples[sample_id]["complete"], (
            sample_id,
            samples[sample_id]["missing"],
            samples[sample_id]["conflicts"],
        )
        listed = {Path(row[f"Read{r}File"]).name for row in samples[sample_id]["fastq_list"] for r in (1, 2)}
        assert listed - {""} == {Path(p).name for p in paths}
    # And every uploaded key is in a manifest
    accounting = result["accounting"]
    assert accounting["balanced"] and accounting["in_manifests"] == accounting["uploaded"] == sum(
        map(len, layout.values())
    )
