"""v1 (bcl2fastq) runs name FASTQs after Sample_Name, in a `<Sample_ID>/` folder when the two differ: ingest
attributes them to the declared Sample_ID whether a FASTQ is handled before or after the sheet, and two Sample_IDs
that share a Sample_Name are two samples, not a conflict. Real adapters on moto."""

from __future__ import annotations

import itertools

import pytest
from moto import mock_aws

from seqlane.completion import account, is_sample
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


@pytest.mark.parametrize("path", ["NA12878_S1_L001_R1_001.fastq.gz", "Project_A/NA12878_S1_L001_R1_001.fastq.gz"])
def test_ingest_waiting_event_is_one_catalog_call_at_the_root_and_in_a_project_folder(env, path):
    # Given a run with a v1 sheet whose samples have Sample_Names (so the catalog knows folder owners)
    env.service.handle(env.upload("SampleSheet.csv", body=V1_SHEET))
    upload = env.upload(path)
    calls = []
    env.ddb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    # When a FASTQ whose name is its sample's id arrives
    outcome = env.service.handle(upload)
    # Then it waits, after one conditional write
    assert outcome.disposition.value == "WAITING"
    assert calls == ["UpdateItem"]


def test_ingest_marker_before_the_v1_sheet_then_the_sheet_re_attributes_and_starts_each_sample(env):
    # Given the two samples that share a Sample_Name, uploaded and closed by the marker before the sheet is handled
    paths = [*FILES["1823A"], *FILES["1826B"], "CopyComplete.txt"]
    uploads = [env.upload(p) for p in paths]
    sheet = env.upload("SampleSheet.csv", body=V1_SHEET.replace(b"1,1829C,,GATAGACA,exp001\n", b""))
    outcomes = [env.service.handle(u) for u in uploads]
    # (without a sheet their folders are project folders: one sample "1823A-tissue" in two folders, in conflict)
    assert outcomes[-1].started == () and len(env.events.of_type("SampleConflict")) == 2
    # When the sheet arrives
    outcome = env.service.handle(sheet)
    # Then each Sample_ID starts once with its own files, and the Sample_Name's record is no sample any more
    assert sorted(name.split("-")[-2] for name in outcome.started) == ["1823A", "1826B"]
    catalog = env.service.catalog
    assert sorted(r.sample_id for r in catalog.samples_of_run(RUN) if is_sample(r)) == ["1823A", "1826B"]
    assert catalog.sample(RUN, "1823A-tissue").status == "RECEIVING"
