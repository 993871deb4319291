"""`seqlane plan RUN_DIR|s3://bucket/run/`: a dry run of ingest on a run folder.

The plan is what the ingest function itself decides: every file of the folder is fed, as an upload event, to the
same `IngestService` with the same catalog adapter (DynamoDB conditional writes), on an in-process moto, with the
completion markers last. Nothing is started and nothing is written outside that throwaway moto; an s3:// source is
only listed and its sample sheet read.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

import boto3

from seqlane.completion import account, conflicts, is_ready, is_sample, missing_reads
from seqlane.ingest import UNSORTED_RUN, IngestService
from seqlane.manifest import fastq_list_rows
from seqlane.naming import CompletionMarkerKey, SampleSheetKey, classify_key
from seqlane.uploads import UploadedObject

PLAN_REGION: Final = "eu-west-2"
_INGEST, _RESULTS, _TABLE = "seqlane-plan-ingest", "seqlane-plan-results", "seqlane-plan-catalog"
_DEFAULT_MODALITY = "germline-wgs"


class PlanSourceError(ValueError):
    """The run folder or prefix cannot be planned; one line for the user."""


@dataclass(frozen=True)
class RunObject:
    key: str  # <run>/<path>, as in the ingest bucket
    size: int
    location: str  # where the file really is: a local path or an s3:// URI
    body: bytes | None = None  # the sample sheet's text; other files are not read


def local_objects(run_dir: Path) -> list[RunObject]:
    if not run_dir.is_dir():
        raise PlanSourceError(f"run folder {run_dir} does not exist or is not a folder")
    objects = []
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        key = f"{run_dir.name}/{path.relative_to(run_dir).as_posix()}"
        body = path.read_bytes() if isinstance(classify_key(key), SampleSheetKey) else None
        objects.append(RunObject(key=key, size=path.stat().st_size, location=str(path), body=body))
    return objects


def s3_objects(uri: str) -> list[RunObject]:
    """The objects under s3://bucket/<prefix>/, keyed from the run folder (the prefix's last segment)."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    prefix = prefix.rstrip("/") + "/"
    if not bucket or prefix == "/":
        raise PlanSourceError(f"{uri} does not name a run folder (s3://bucket/[path/]run/)")
    run_id = PurePosixPath(prefix).name
    base = prefix[: -len(run_id) - 1]
    s3 = boto3.client("s3")
    objects = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"][len(base) :]
            body = None
            if isinstance(classify_key(key), SampleSheetKey):
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            objects.append(RunObject(key=key, size=item["Size"], location=f"s3://{bucket}/{item['Key']}", body=body))
    if not objects:
        raise PlanSourceError(f"nothing under {uri}")
    return objects


def plan(objects: list[RunObject], default_modality: str = _DEFAULT_MODALITY) -> dict[str, Any]:
    """Feed the run's files to the ingest code on a throwaway moto and report what it decided."""
    from moto import mock_aws

    if not objects:
        raise PlanSourceError("the run folder holds no files")
    run_id = objects[0].key.split("/", 1)[0]
    endpoint = os.environ.pop("AWS_ENDPOINT_URL", None)  # the throwaway moto, never a running local stack
    try:
        with mock_aws():
            return _plan_in_moto(objects, run_id, default_modality)
    finally:
        if endpoint is not None:
            os.environ["AWS_ENDPOINT_URL"] = endpoint


def _plan_in_moto(objects: list[RunObject], run_id: str, default_modality: str) -> dict[str, Any]:
    service, catalog = _ingest_service(objects, default_modality)
    markers_last = sorted(objects, key=lambda o: isinstance(classify_key(o.key), CompletionMarkerKey))
    for number, obj in enumerate(markers_last, start=1):
        etag = hashlib.md5(obj.key.encode(), usedforsecurity=False).hexdigest()  # stands for the content
        service.handle(
            UploadedObject(
                bucket=_INGEST, key=obj.key, size=obj.size, etag=etag, sequencer=f"{number:x}", region=PLAN_REGION
            )
        )
    run = catalog.run_state(run_id)
    records = [record for record in catalog.samples_of_run(run_id) if is_sample(record)]
    ignored = sorted(
        (
            {"key": key, "reason": reason}
            for run in (run_id, UNSORTED_RUN)
            for key, reason in catalog.ignored_files(run)
        ),
        key=lambda entry: entry["key"],
    )
    locations = {obj.key: obj.location for obj in objects}
    samples = []
    for record in sorted(records, key=lambda r: r.sample_id):
        complete = is_ready(record, run)
        found = conflicts(record)
        rows = fastq_list_rows(
            run_id, record.sample_id, record.files.values(), lambda fastq: locations.get(fastq.key, fastq.key)
        )
        samples.append(
            {
                "sample_id": record.sample_id,
                "modality": record.modality or default_modality,
                "declared_in_sample_sheet": record.declared_lanes is not None,
                "complete": complete,
                "status": "CONFLICT" if found else str(record.status),
                "missing": [] if complete or found else _why_waiting(record, run),
                "conflicts": [{"slot": c.slot, "keys": list(c.keys), "reason": c.reason} for c in found],
                "fastq_list": rows,
            }
        )
    accounting = account([obj.key for obj in objects], records, [entry["key"] for entry in ignored])
    return {
        "run_id": run_id,
        "closed_by_marker": run.closed,
        "sample_sheet": {"key": run.sheet_key, "error": run.sheet_error},
        "samples": samples,
        "ignored": ignored,
        "accounting": accounting,
    }


def _ingest_service(objects: list[RunObject], default_modality: str):
    from seqlane.adapters.aws import S3ObjectStore
    from seqlane.adapters.catalog_table import DynamoCatalog

    s3 = boto3.client("s3", region_name=PLAN_REGION)
    for bucket in (_INGEST, _RESULTS):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": PLAN_REGION})
    for obj in objects:  # listing needs the keys; only the sample sheet is read
        s3.put_object(Bucket=_INGEST, Key=obj.key, Body=obj.body or b"")
    dynamodb = boto3.client("dynamodb", region_name=PLAN_REGION)
    dynamodb.create_table(
        TableName=_TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    catalog = DynamoCatalog(_TABLE, dynamodb)
    service = IngestService(
        catalog=catalog,
        store=S3ObjectStore(s3),
        orchestrator=_NoStart(),
        events=_NoEvents(),
        ingest_bucket=_INGEST,
        results_bucket=_RESULTS,
        region=PLAN_REGION,
        dragen_version="plan",
        reference_uri="s3://plan/reference/",
        modality=default_modality,
    )
    return service, catalog


class _NoStart:
    """A dry run starts nothing: every start is accepted and forgotten."""

    def start_analysis(self, execution_name: str, execution_input: dict[str, Any]) -> bool:
        return True


class _NoEvents:
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        return None


def _why_waiting(record, run) -> list[str]:
    missing = missing_reads(record)
    if missing:
        return missing
    if record.declared_lanes == frozenset():
        return ["the run's completion marker (the sample sheet has no Lane column, so it cannot say which lanes come)"]
    return ["the run's completion marker or a sample sheet that declares this sample"]
