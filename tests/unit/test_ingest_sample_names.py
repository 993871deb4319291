"""v1 (bcl2fastq) runs name FASTQs after Sample_Name, in a `<Sample_ID>/` folder when the two differ: ingest
attributes them to the declared Sample_ID whether a FASTQ is handled before or after the sheet, and two Sample_IDs
that share a Sample_Name are two samples, not a conflict. Real adapters on moto."""

from __future__ import annotations

import itertools

import pytest
from moto import mock_aws

from seqlane.completion import account
from tests.unit.test_ingest import RUN, Env

# Two samples that share a Sample_Name (as in clintval's paired-end-single-index.csv), and one without a name.
V1_SHEET = b"""[Header]
IEMFileVersion,4
[Reads]
151
151
[Data]
Lane,Sample_ID,Sample_Name,index,Sample_Project
1,1823A,1823A-tissue,GAATCTGA,exp001
1,1826B,1823A-tissue,CGAACTTA,exp001
1,1829C,,GATAGACA,exp001
"""
FILES = {
    "1823A": [f"exp001/1823A/1823A-tissue_S1_L001_R{r}_001.fastq.gz" for r in (1, 2)],
    "1826B": [f"exp001/1826B/1823A-tissue_S2_L001_R{r}_001.fastq.gz" for r in (1, 2)],
    "1829C": [f"exp001/1829C_S3_L001_R{r}_001.fastq.gz" for r in (1, 2)],
}
PATHS = ["SampleSheet.csv", *FILES["1823A"], *FILES["1826B"]]
# R1 and R2 of a sample play the same part: one order of each R1/R2 swap (30 of the 120)
ORDERS = [
    order
    for order in itertools.permutations(PATHS)
    if order.index(PATHS[1]) < order.index(PATHS[2]) and order.index(PATHS[3]) < order.index(PATHS[4])
]


@pytest.fixture
def env(aws_credentials):
    with mock_aws():
        yield Env()


@pytest.mark.parametrize("chunk", range(3))
def test_ingest_sample_name_files_belong_to_their_sample_id_in_any_order(env, chunk):
    for number, order in enumerate(ORDERS[chunk::3]):
        run = f"{RUN}{number}"
        # Given the v1 sheet and the two samples' files, handled in this order, then the third sample and the marker
        paths = [*order, *FILES["1829C"], "CopyComplete.txt"]
        uploads = [env.upload(p, run=run, body=V1_SHEET if p == "SampleSheet.csv" else b"") for p in paths]
        outcomes = [env.service.handle(upload) for upload in uploads]
        # Then each Sample_ID started once, with its own files; no conflict; no sample named after the Sample_Name
        started = sorted(name.split("-")[-2] for outcome in outcomes for name in outcome.started)
        assert started == ["1823A", "1826B", "1829C"], order
        catalog = env.service.catalog
        records = {r.sample_id: r for r in catalog.samples_of_run(run) if r.files or r.declared_lanes is not None}
        assert sorted(records) == sorted(FILES), order
        for sample_id, files in FILES.items():
            assert sorted(f.key for f in records[sample_id].files.values()) == [f"{run}/{p}" for p in files]
            assert records[sample_id].slot_claims == {}
        assert env.events.of_type("SampleConflict") == []
        # And every key is in a manifest
        result = account([u.key for u in uploads], records.values(), [])
        assert result["balanced"] and result["in_manifests"] == 6


def test_ingest_sample_name_folder_without_a_sheet_is_a_project_folder(env):
    # Given files named 1823A-tissue in a folder 1823A, and no sheet
    uploads = [env.upload(p) for p in FILES["1823A"]]
    outcomes = [env.service.handle(u) for u in [*uploads, env.marker()]]
    # Then the folder is a project: the sample is the file's name
    assert [name.split("-")[-3:-1] for name in outcomes[-1].started] == [["1823A", "tissue"]]
