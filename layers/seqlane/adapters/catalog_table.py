"""The catalog in one DynamoDB table (pk/sk), one partition per run:

RUN#<run> / RUN                              run completion (marker key, time), sample sheet (key or error)
RUN#<run> / SAMPLE#<sample>                  status, one `fastq#L001#R1` attribute per file slot (`#002` for split
                                             segments), what the sheet declares, manifest claim and superseded ones

Run and sample ids are read from the keys, and a sample item without `status` is RECEIVING: the slot write, the
one write of every upload event, sets nothing but its slot.
RUN#<run> / IGNORED#<key>                    a file seqlane does not use, and why
RUN#<run> / OUTPUT#<sample>#<version>#<path> one output file of an analysis (URI, size, sha256)
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from seqlane.manifest import FastqFile
from seqlane.ports import (
    FINAL_STATUSES,
    Claim,
    ClaimOutcome,
    JobOutput,
    RunState,
    SampleRecord,
    SampleStatus,
    Slot,
)

_SLOT_PREFIX = "fastq#"
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _dynamo_value(value: Any) -> Any:
    """DynamoDB numbers are decimals: floats (QC metrics) go in by their shortest repr, never binary noise."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {name: _dynamo_value(item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_dynamo_value(item) for item in value]
    return value


def _values(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(_dynamo_value(value)) for name, value in values.items()}


def _item(raw: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in raw.items()}


def _is_condition_failure(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == "ConditionalCheckFailedException"


def _conditional(write, **request) -> tuple[bool, dict[str, Any]]:
    """A conditional write: (True, its response) when it applied, (False, the item as it stands, when the request
    asked for it with ReturnValuesOnConditionCheckFailure) when its condition did not hold."""
    try:
        return True, write(**request)
    except ClientError as error:
        if not _is_condition_failure(error):
            raise
        return False, _item(error.response.get("Item", {}))


def _slot(lane: int, read: int, segment: int = 1) -> str:
    return f"{_SLOT_PREFIX}L{lane:03d}#R{read}" + (f"#{segment:03d}" if segment > 1 else "")


def _parse_slot(slot: str) -> Slot:
    lane, read, *segment = slot[len(_SLOT_PREFIX) :].split("#")
    return int(lane[1:]), int(read[1:]), int(segment[0]) if segment else 1


def sample_from_item(item: dict[str, Any]) -> SampleRecord:
    files = {}
    for name, value in item.items():
        if name.startswith(_SLOT_PREFIX):
            fastq = FastqFile(
                key=value["key"],
                lane=int(value["lane"]),
                read=int(value["read"]),
                size=int(value["size"]),
                etag=value["etag"],
                segment=int(value.get("segment", 1)),
            )
            files[(fastq.lane, fastq.read, fastq.segment)] = fastq
    return SampleRecord(
        run_id=item["pk"].removeprefix("RUN#"),
        sample_id=item["sk"].removeprefix("SAMPLE#"),
        status=SampleStatus(item.get("status", SampleStatus.RECEIVING)),
        files=files,
        manifest_version=item.get("manifest_version"),
        expected=frozenset(_parse_slot(slot) for slot in item.get("expected_slots", ())),
        declared_lanes=frozenset(int(lane) for lane in item["declared_lanes"]) if "declared_lanes" in item else None,
        paired=item.get("paired"),
        modality=item.get("modality"),
        started="execution_started_at" in item,
    )


class DynamoCatalog:
    def __init__(self, table_name: str, client=None) -> None:
        self.table_name = table_name
        self.client = client or boto3.client("dynamodb")

    @staticmethod
    def _key(run_id: str, sort_key: str) -> dict[str, Any]:
        return _values({"pk": f"RUN#{run_id}", "sk": sort_key})

    # ---- ingest
    def record_fastq(self, run_id: str, sample_id: str, fastq: FastqFile, ordering: str) -> SampleRecord:
        file_value = {
            "key": fastq.key,
            "lane": fastq.lane,
            "read": fastq.read,
            "size": fastq.size,
            "etag": fastq.etag,
            "segment": fastq.segment,
            "ordering": ordering,
            "recorded_at": _now(),
        }
        applied, result = _conditional(
            self.client.update_item,
            TableName=self.table_name,
            Key=self._key(run_id, f"SAMPLE#{sample_id}"),
            # A later S3 sequencer wins the slot; an older event arriving late changes nothing.
            UpdateExpression="SET #slot = :file",
            ConditionExpression="attribute_not_exists(#slot) OR #slot.ordering <= :ordering",
            ExpressionAttributeNames={"#slot": _slot(fastq.lane, fastq.read, fastq.segment)},
            ExpressionAttributeValues=_values({":file": file_value, ":ordering": ordering}),
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        # Not applied: a newer file keeps the slot, and the item as it stands is the sample.
        return sample_from_item(_item(result["Attributes"]) if applied else result)

    def record_ignored(self, run_id: str, key: str, reason: str) -> bool:
        applied, _ = _conditional(
            self.client.put_item,
            TableName=self.table_name,
            Item=_values(
                {"pk": f"RUN#{run_id}", "sk": f"IGNORED#{key}", "key": key, "reason": reason, "recorded_at": _now()}
            ),
            ConditionExpression="attribute_not_exists(sk)",
        )
        return applied

    def mark_run_complete(self, run_id: str, marker_key: str) -> None:
        self.client.update_item(
            TableName=self.table_name,
            Key=self._key(run_id, "RUN"),
            UpdateExpression="SET run_id = :run, complete = :true, "
            "marker_key = if_not_exists(marker_key, :marker), completed_at = if_not_exists(completed_at, :now)",
            ExpressionAttributeValues=_values({":run": run_id, ":true": True, ":marker": marker_key, ":now": _now()}),
        )

    def record_sample_sheet(self, run_id: str, key: str, error: str | None) -> None:
        """A valid sheet is recorded; an invalid one leaves its error (and any earlier valid sheet) on the run."""
        if error is None:
            update = "SET run_id = :run, sheet_key = :key, sheet_read_at = :now REMOVE sheet_error, sheet_error_key"
            values = {":run": run_id, ":key": key, ":now": _now()}
        else:
            update = "SET run_id = :run, sheet_error = :error, sheet_error_key = :key"
            values = {":run": run_id, ":key": key, ":error": error}
        self.client.update_item(
            TableName=self.table_name,
            Key=self._key(run_id, "RUN"),
            UpdateExpression=update,
            ExpressionAttributeValues=_values(values),
        )

    def declare_sample(
        self, run_id: str, sample_id: str, lanes: frozenset[int], paired: bool, modality: str | None
    ) -> None:
        self.client.update_item(
            TableName=self.table_name,
            Key=self._key(run_id, f"SAMPLE#{sample_id}"),
            UpdateExpression="SET declared_lanes = :lanes, paired = :paired, modality = :modality",
            ExpressionAttributeValues=_values(
                {
                    ":lanes": sorted(lanes),
                    ":paired": paired,
                    ":modality": modality,
                }
            ),
        )

    def expect_reads(self, run_id: str, sample_id: str, slots: set[Slot]) -> None:
        self.client.update_item(
            TableName=self.table_name,
            Key=self._key(run_id, f"SAMPLE#{sample_id}"),
            UpdateExpression="ADD expected_slots :slots",
            ExpressionAttributeValues=_values({":slots": {_slot(*slot) for slot in slots}}),
        )

    def run_state(self, run_id: str) -> RunState:
        response = self.client.get_item(
            TableName=self.table_name,
            Key=self._key(run_id, "RUN"),
            ConsistentRead=True,
            ProjectionExpression="complete, sheet_key, sheet_error",
        )
        item = _item(response.get("Item", {}))
        return RunState(
            closed=bool(item.get("complete", False)),
            sheet_key=item.get("sheet_key"),
            sheet_error=item.get("sheet_error"),
        )

    def samples_of_run(self, run_id: str) -> list[SampleRecord]:
        paginator = self.client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :sample)",
            ExpressionAttributeValues=_values({":pk": f"RUN#{run_id}", ":sample": "SAMPLE#"}),
            ConsistentRead=True,
        )
        return [sample_from_item(_item(raw)) for page in pages for raw in page["Items"]]

    def ignored_files(self, run_id: str) -> list[tuple[str, str]]:
        """(key, reason) of each file of the run recorded as ignored."""
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :ignored)",
            ExpressionAttributeValues=_values({":pk": f"RUN#{run_id}", ":ignored": "IGNORED#"}),
        )
        return [(item["key"], item["reason"]) for page in pages for item in map(_item, page["Items"])]

    def claim_manifest(
        self, run_id: str, sample_id: str, version: str, manifest_uri: str, execution_name: str
    ) -> Claim:
        applied, current = self._write_manifest_claim(
            run_id,
            sample_id,
            (version, manifest_uri, execution_name),
            condition="attribute_not_exists(manifest_version)",
            returning_current=True,
        )
        if applied:
            return Claim(ClaimOutcome.CLAIMED, version)
        claimed = current.get("manifest_version")
        if claimed != version:
            return Claim(ClaimOutcome.OTHER_VERSION, claimed)
        # The same version again is a retry after a crash between claim and start: carry on.
        superseded = current.get("superseded_versions") or [None]
        return Claim(ClaimOutcome.CLAIMED, claimed, superseded_from=superseded[-1])

    def supersede_manifest(
        self, run_id: str, sample_id: str, *, previous: str, version: str, manifest_uri: str, execution_name: str
    ) -> bool:
        applied, _ = self._write_manifest_claim(
            run_id,
            sample_id,
            (version, manifest_uri, execution_name),
            condition="manifest_version = :old",
            extra_set=", superseded_versions = list_append(if_not_exists(superseded_versions, :empty), :previous) "
            "REMOVE execution_started_at, finished_at, exit_code, status_reason, failure_error, failure_cause",
            extra_values={":empty": [], ":previous": [previous], ":old": previous},
        )
        return applied

    def _write_manifest_claim(
        self,
        run_id: str,
        sample_id: str,
        claim: tuple[str, str, str],  # version, manifest URI, execution name
        *,
        condition: str,
        extra_set: str = "",
        extra_values: dict[str, Any] | None = None,
        returning_current: bool = False,
    ) -> tuple[bool, dict[str, Any]]:
        version, manifest_uri, execution_name = claim
        request = {"ReturnValuesOnConditionCheckFailure": "ALL_OLD"} if returning_current else {}
        return _conditional(
            self.client.update_item,
            TableName=self.table_name,
            Key=self._key(run_id, f"SAMPLE#{sample_id}"),
            UpdateExpression="SET manifest_version = :version, manifest_uri = :uri, execution_name = :name, "
            "#status = :manifested, manifested_at = :now" + extra_set,
            ConditionExpression=condition,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=_values(
                {
                    ":version": version,
                    ":uri": manifest_uri,
                    ":name": execution_name,
                    ":manifested": SampleStatus.MANIFESTED.value,
                    ":now": _now(),
                    **(extra_values or {}),
                }
            ),
            **request,
        )

    def mark_execution_started(self, run_id: str, sample_id: str, version: str) -> bool:
        applied, _ = _conditional(
            self.client.update_item,
            TableName=self.table_name,
            Key=self._key(run_id, f"SAMPLE#{sample_id}"),
            UpdateExpression="SET execution_started_at = :now",
            ConditionExpression="manifest_version = :version AND attribute_not_exists(execution_started_at)",
            ExpressionAttributeValues=_values({":version": version, ":now": _now()}),
        )
        return applied

    # ---- catalog of outcomes
    def record_outputs(self, run_id: str, sample_id: str, version: str, outputs: list[JobOutput]) -> None:
        requests = [
            {
                "PutRequest": {
                    "Item": _values(
                        {
                            "pk": f"RUN#{run_id}",
                            "sk": f"OUTPUT#{sample_id}#{version}#{output.path}",
                            "run_id": run_id,
                            "sample_id": sample_id,
                            "version": version,
                            "path": output.path,
                            "uri": output.uri,
                            "size": output.size,
                            "sha256": output.sha256,
                        }
                    )
                }
            }
            for output in outputs
        ]
        for start in range(0, len(requests), 25):
            self._batch_write(requests[start : start + 25])

    def _batch_write(self, requests: list[dict[str, Any]], attempts: int = 8) -> None:
        for attempt in range(attempts):
            response = self.client.batch_write_item(RequestItems={self.table_name: requests})
            requests = response.get("UnprocessedItems", {}).get(self.table_name, [])
            if not requests:
                return
            time.sleep(min(0.05 * 2**attempt, 2))
        raise RuntimeError(f"{len(requests)} catalog writes still unprocessed after {attempts} attempts")

    def record_job_outcome(
        self, run_id: str, sample_id: str, version: str, status: SampleStatus, details: dict[str, Any]
    ) -> bool:
        """False when the sample has moved on to another version (the outcome is then only logged)."""
        assignments = ", ".join(f"#d_{name} = :d_{name}" for name in details)
        applied, _ = _conditional(
            self.client.update_item,
            TableName=self.table_name,
            Key=self._key(run_id, f"SAMPLE#{sample_id}"),
            UpdateExpression=f"SET #status = :status, finished_at = :now{', ' if details else ''}{assignments}",
            ConditionExpression="manifest_version = :version",
            ExpressionAttributeNames={"#status": "status", **{f"#d_{name}": name for name in details}},
            ExpressionAttributeValues=_values(
                {
                    ":status": status.value,
                    ":now": _now(),
                    ":version": version,
                    **{f":d_{name}": value for name, value in details.items()},
                }
            ),
        )
        return applied

    # ---- final states of analysis attempts (the catalog function); see seqlane.catalog
    def finish_analysis(
        self, run_id: str, sample_id: str, version: str, attempt: int, status: SampleStatus, details: dict[str, Any]
    ) -> bool:
        """Enter `status` for this version and attempt, only forward: from a state that is not final, or again
        from the same final state while its event is unpublished (a crash between the write and the publish)."""
        finals = sorted(s.value for s in FINAL_STATUSES)
        final_names = {f":final{i}": value for i, value in enumerate(finals)}
        same_attempt = "attempt = :attempt" + (" OR attribute_not_exists(attempt)" if attempt == 1 else "")
        assignments = "".join(f", #d_{name} = :d_{name}" for name in details)
        applied, _ = _conditional(
            self.client.update_item,
            TableName=self.table_name,
            Key=self._key(run_id, f"SAMPLE#{sample_id}"),
            UpdateExpression=f"SET #status = :status, finished_at = :now{assignments}",
            ConditionExpression=f"manifest_version = :version AND ({same_attempt}) AND "
            f"(NOT #status IN ({', '.join(final_names)}) "
            "OR (#status = :status AND attribute_not_exists(outcome_published_at)))",
            ExpressionAttributeNames={"#status": "status", **{f"#d_{name}": name for name in details}},
            ExpressionAttributeValues=_values(
                {
                    ":status": status.value,
                    ":now": _now(),
                    ":version": version,
                    ":attempt": attempt,
                    **final_names,
                    **{f":d_{name}": value for name, value in details.items()},
                }
            ),
        )
        return applied

    def mark_outcome_published(self, run_id: str, sample_id: str, version: str, attempt: int) -> None:
        same_attempt = "attempt = :attempt" + (" OR attribute_not_exists(attempt)" if attempt == 1 else "")
        _conditional(
            self.client.update_item,
            TableName=self.table_name,
            Key=self._key(run_id, f"SAMPLE#{sample_id}"),
            UpdateExpression="SET outcome_published_at = :now",
            ConditionExpression=f"manifest_version = :version AND ({same_attempt})",
            ExpressionAttributeValues=_values({":now": _now(), ":version": version, ":attempt": attempt}),
        )
