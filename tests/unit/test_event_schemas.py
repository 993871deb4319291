"""events/schemas/*.json against what the code publishes: CatalogService's AnalysisSucceeded detail (captured on
moto) and its AnalysisFailed details, so schema and code cannot drift apart."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from tests.conftest import ROOT
from tests.unit.test_catalog import (
    FAILED_JOB_ID,
    analysis_succeeded_detail,
    execution_event,
    job_detail,
    seqlane_world,
)

SCHEMAS = ROOT / "events" / "schemas"


def schema(detail_type: str) -> dict[str, Any]:
    loaded = json.loads((SCHEMAS / f"{detail_type}.json").read_text())
    Draft202012Validator.check_schema(loaded)
    return loaded


def test_analysis_succeeded_schema_matches_published_detail(aws_credentials):
    # Given the detail CatalogService published for a succeeded DRAGEN job
    detail = analysis_succeeded_detail()
    succeeded = schema("AnalysisSucceeded")

    # When it is validated, Then it conforms, and the schema requires exactly the keys published
    Draft202012Validator(succeeded).validate(detail)
    assert set(succeeded["required"]) == set(detail)
    assert set(succeeded["properties"]["outputs"]["items"]["required"]) == set(detail["outputs"][0])
    # And the schema constrains: an output size given as text does not conform
    detail["outputs"][0]["size"] = str(detail["outputs"][0]["size"])
    with pytest.raises(ValidationError):
        Draft202012Validator(succeeded).validate(detail)


@pytest.mark.parametrize("ending", ["job-failed", "result-missing", "timed-out"])
def test_analysis_failed_schema_matches_published_detail(aws_credentials, ending):
    # Given the detail CatalogService published for an attempt that failed, lacked its result file, or timed out
    with seqlane_world() as world:
        if ending == "job-failed":
            world.put_result(job_id=FAILED_JOB_ID, status="FAILED", error="R1 has 9 reads, R2 has 6", outputs=[])
            world.service.handle_job_state(job_detail("FAILED"))
        elif ending == "result-missing":
            world.service.handle_job_state(job_detail("SUCCEEDED"))
        else:
            world.service.handle_execution_status(execution_event("TIMED_OUT"))
        (event,) = world.published()
    failed = schema("AnalysisFailed")

    # When it is validated, Then it conforms, and the schema requires exactly the keys published
    Draft202012Validator(failed).validate(event["detail"])
    assert set(failed["required"]) == set(event["detail"])


def test_event_schemas_readme_examples_conform():
    # Given the README's examples, in table order (AnalysisSucceeded, then AnalysisFailed)
    readme = (SCHEMAS / "README.md").read_text()
    examples = [json.loads(block.split("```")[0]) for block in readme.split("```json")[1:]]

    # When each is validated against its schema, Then it conforms
    assert len(examples) == 2
    for detail_type, example in zip(("AnalysisSucceeded", "AnalysisFailed"), examples, strict=True):
        Draft202012Validator(schema(detail_type)).validate(example)


def test_ingest_event_schemas_match_published_details(aws_credentials):
    from moto import mock_aws

    from tests.unit.test_ingest import Env

    with mock_aws():
        env = Env()
        # Given a run with a stray file, a rejected sheet, and a sample re-uploaded after its start
        env.service.handle(env.upload("Reports/Demultiplex_Stats.csv"))
        env.service.handle(env.upload("SampleSheet.csv", body=b"[Header]\nFileFormatVersion,2\n"))
        for upload in [env.fastq(1, 1), env.fastq(1, 2), env.marker()]:
            env.service.handle(upload)
        env.service.handle(env.fastq(1, 1, etag="changed"))

    # When each published detail is validated against its schema
    published = {kind: detail for kind, detail in env.events.published}
    assert set(published) == {"FileIgnored", "SampleSheetRejected", "SampleReuploaded"}
    for kind, detail in published.items():
        loaded = schema(kind)
        # Then it conforms, and the schema requires every key the code always publishes
        Draft202012Validator(loaded).validate(detail)
        assert set(loaded["required"]) <= set(detail) <= set(loaded["properties"])
