"""events/schemas/*.json against what the code publishes: CatalogService's AnalysisSucceeded detail (captured on
moto) and the ASL's PublishAnalysisFailed detail, so schema and code cannot drift apart."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from tests.conftest import ROOT
from tests.unit.test_catalog import RUN, SAMPLE, VERSION, analysis_succeeded_detail, manifest_uri

SCHEMAS = ROOT / "events" / "schemas"


def schema(detail_type: str) -> dict[str, Any]:
    loaded = json.loads((SCHEMAS / f"{detail_type}.json").read_text())
    Draft202012Validator.check_schema(loaded)
    return loaded


def asl_failed_detail_template() -> dict[str, str]:
    """PublishAnalysisFailed's Entries[0].Detail: {"run_id.$": "$.run_id", ...}."""
    asl = json.loads((ROOT / "statemachines" / "analysis.asl.json").read_text())
    return asl["States"]["PublishAnalysisFailed"]["Parameters"]["Entries"][0]["Detail"]


def resolve(path: str, state_input: dict[str, Any], context: dict[str, Any]) -> Any:
    """Enough JSONPath for the ASL's "$.a.b" (state input) and "$$.a.b" (context object) references."""
    document, rest = (context, path[3:]) if path.startswith("$$.") else (state_input, path[2:])
    for name in rest.split("."):
        document = document[name]
    return document


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


def test_analysis_failed_schema_matches_state_machine_detail():
    # Given the ASL's AnalysisFailed detail, resolved against an execution whose DRAGEN job failed
    template = asl_failed_detail_template()
    state_input = {
        "run_id": RUN,
        "sample_id": SAMPLE,
        "version": VERSION,
        "manifest_uri": manifest_uri(SAMPLE, VERSION),
        "error": {"Error": "States.TaskFailed", "Cause": json.dumps({"JobId": "b73e19c4", "Status": "FAILED"})},
    }
    context = {"Execution": {"Name": f"{RUN}-{SAMPLE}-{VERSION}"}}
    detail = {key.removesuffix(".$"): resolve(path, state_input, context) for key, path in template.items()}
    failed = schema("AnalysisFailed")

    # When it is validated, Then it conforms, and the schema requires exactly the ASL's keys
    Draft202012Validator(failed).validate(detail)
    assert sorted(failed["required"]) == sorted(key.removesuffix(".$") for key in template)
    assert all(key.endswith(".$") for key in template)


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
