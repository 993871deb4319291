"""The catalog in one DynamoDB table (pk/sk), one partition per run:

RUN#<run> / RUN                              run completion (marker key, time), sample sheet (key or error)
RUN#<run> / SAMPLE#<sample>                  status, one `fastq#L001#R1` attribute per file slot (`#002` for split
                                             segments), what the sheet declares, manifest claim and superseded ones;
                                             when two keys claim one slot, one `claim#L001#R1#<key hash>` per key
                                             (the slot keeps the first), `conflicts_reported` (conflict ids announced)
                                             and `status` CONFLICT; `folder_owners`: a v1 sheet's Sample_IDs whose
                                             files are named after this record's id (their Sample_Name) in `<id>/`

Run and sample ids are read from the keys, and a sample item without `status` is RECEIVING: the slot write, the
one write of every upload event, sets nothing but its slot.
RUN#<run> / IGNORED#<key>                    a file seqlane does not use, and why
RUN#<run> / OUTPUT#<sample>#<version>#<path> one output file of an analysis (URI, size, sha256)
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from seqlane.manifest import FastqFile
from seqlane.ports import (
    FINAL_STATUSES,
    RETRYABLE_STATUSES,
    AnalysisState,
    Claim,
    ClaimOutcome,
    JobOutput,
    RunState,
    SampleRecord,
    SampleStatus,
    Slot,
)

_SLOT_PREFIX = "fastq#"
# What one analysis attempt writes on its sample: a new attempt or a new input version starts without any of it.
ATTEMPT_ATTRIBUTES = (
    "execution_started_at",
    "execution_arn",
    "submitted_at",
    "finished_at",
    "outcome_published_at",
    "job_id",
    "exit_code",
    "status_reason",
    "failure_error",
    "failure_reason",
    "failure_cause",
    "runner_exit_code",
    "batch_attempts",
    "result_uri",
    "output_count",
    "engine",
    "metrics",
    "inputs",
    "reconciliation",
)
_CLAIM_PREFIX = "claim#"
_MAX_SETTLE_ATTEMPTS = 8
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
        return False, _item(cast(dict[str, Any], error.response.get("Item", {})))  # DynamoDB's item, attribute values


def _same_attempt(attempt: int) -> str:
    """The condition that the sample is on analysis attempt `:attempt` (a sample without one is on attempt 1)."""
    return "attempt = :attempt" + (" OR attribute_not_exists(attempt)" if attempt == 1 else "")


def _slot(lane: int, read: int, segment: int = 1) -> str:
    return f"{_SLOT_PREFIX}L{lane:03d}#R{read}" + (f"#{segment:03d}" if segment > 1 else "")


def _parse_slot(slot: str) -> Slot:
    lane, read, *segment = slot[len(_SLOT_PREFIX) :].split("#")
    return int(lane[1:]), int(read[1:]), int(segment[0]) if segment else 1


def _claim(slot: Slot, key: str) -> str:
    """The attribute of one key's claim on a slot: `claim#L001#R1#<16 hex of sha256(key)>` (names stay short)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return _CLAIM_PREFIX + _slot(*slot).removeprefix(_SLOT_PREFIX) + "#" + digest


def _claim_slot(name: str) -> Slot:
    return _parse_slot(_SLOT_PREFIX + name.removeprefix(_CLAIM_PREFIX).rsplit("#", 1)[0])


def _file_value(fastq: FastqFile, ordering: str) -> dict[str, Any]:
    return {
        "key": fastq.key,
        "lane": fastq.lane,
        "read": fastq.read,
        "size": fastq.size,
        "etag": fastq.etag,
        "segment": fastq.segment,
        "ordering": ordering,
        "recorded_at": _now(),
    }


def _fastq(value: dict[str, Any]) -> FastqFile:
    return FastqFile(
        key=value["key"],
        lane=int(value["lane"]),
        read=int(value["read"]),
        size=int(value["size"]),
        etag=value["etag"],
        segment=int(value.get("segment", 1)),
    )


def is_sample_item(item: dict[str, Any]) -> bool:
    """A SAMPLE# item that is a sample: not one that only says, for a v1 sheet, which folders own a Sample_Name."""
    if not item["sk"].startswith("SAMPLE#"):
        return False
    return any(name.startswith((_SLOT_PREFIX, _CLAIM_PREFIX)) for name in item) or any(
        name in item for name in ("declared_lanes", "expected_slots", "manifest_version", "status")
    )


def sample_from_item(item: dict[str, Any]) -> SampleRecord:
    files: dict[Slot, FastqFile] = {}
    claims: dict[Slot, dict[str, FastqFile]] = {}
    for name, value in item.items():
        if name.startswith(_SLOT_PREFIX):
            fastq = _fastq(value)
            files[(fastq.lane, fastq.read, fastq.segment)] = fastq
        elif name.startswith(_CLAIM_PREFIX):
            claims.setdefault(_claim_slot(name), {})[value["key"]] = _fastq(value)
    # The marker's listing claims every listed key (seqlane.closing): a slot claimed only by its own file is no claim.
    for slot in [slot for slot, found in claims.items() if slot in files and set(found) == {files[slot].key}]:
        del claims[slot]
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
        attempt=int(item.get("attempt", 1)),
        slot_claims=claims,
        folder_owners=frozenset(item.get("folder_owners", ())),
        conflicts_reported=frozenset(item.get("conflicts_reported", ())),
    )


def _settle_request(item: dict[str, Any], keys: set[str]) -> dict[str, Any] | None:
    """The conditional update that forgets `keys` in a sample item, or None when none of them is in it."""
    holders: dict[Slot, dict[str, Any]] = {}
    claims: dict[Slot, dict[str, dict[str, Any]]] = {}  # slot -> key -> {"name": attribute, "value": file}
    for name, value in item.items():
        if name.startswith(_SLOT_PREFIX):
            holders[_parse_slot(name)] = value
        elif name.startswith(_CLAIM_PREFIX):
            claims.setdefault(_claim_slot(name), {})[value["key"]] = {"name": name, "value": value}
    touched = sorted(
        slot
        for slot in {*holders, *claims}
        if holders.get(slot, {}).get("key") in keys or keys & set(claims.get(slot, {}))
    )
    if not touched:
        return None
    update = _Update()
    slots_left = len(set(holders) - set(touched))
    for number, slot in enumerate(touched):
        slots_left += _settle_slot(
            update, number, slot, holder=holders.get(slot), claims=claims.get(slot, {}), keys=keys
        )
    if not slots_left and "declared_lanes" not in item and "manifest_version" not in item:
        # Nothing of a sample is left (its files belong to another): what the listing expected and the conflict
        # it was held in go too, so the record is no sample any more.
        update.removes += ["expected_slots", "conflicts_reported", "conflict_at", "#status"]
        update.names["#status"] = "status"
        return update.request(set())
    return update.request(set(item.get("conflicts_reported", ())))


class _Update:
    def __init__(self) -> None:
        self.sets: list[str] = []
        self.removes: list[str] = []
        self.names: dict[str, str] = {"#k": "key"}
        self.values: dict[str, Any] = {}
        self.conditions: list[str] = []
        self.settled: set[str] = set()  # conflict ids no longer true

    def request(self, reported: set[str]) -> dict[str, Any]:
        expression = ""
        if self.sets:
            expression += "SET " + ", ".join(self.sets) + " "
        if self.removes:
            expression += "REMOVE " + ", ".join(self.removes) + " "
        if self.settled & reported:
            expression += "DELETE conflicts_reported :settled"
            self.values[":settled"] = self.settled & reported
        request = {
            "UpdateExpression": expression.strip(),
            "ConditionExpression": " AND ".join(self.conditions),
            "ExpressionAttributeNames": self.names,
        }
        if self.values:
            request["ExpressionAttributeValues"] = _values(self.values)
        return request


def _settle_slot(
    update: _Update,
    number: int,
    slot: Slot,
    *,
    holder: dict[str, Any] | None,
    claims: dict[str, dict[str, Any]],
    keys: set[str],
) -> int:
    """Forget `keys` in one slot (1 when the slot still holds a file after): the one key left takes the slot, two or
    more stay claims. The write holds only if the slot still has the holder read."""
    slot_name = f"#s{number}"
    update.names[slot_name] = _slot(*slot)
    claimants = {key: claim["value"] for key, claim in claims.items()}
    if holder is not None:
        claimants[holder["key"]] = holder
        update.values[f":h{number}"] = holder["key"]
        update.conditions.append(f"{slot_name}.#k = :h{number}")
    else:
        update.conditions.append(f"attribute_not_exists({slot_name})")
    remaining = {key: value for key, value in claimants.items() if key not in keys}
    # A claim only listed (its event not handled yet: no size or ETag) never takes the slot; its event will.
    known = {key: value for key, value in remaining.items() if value.get("ordering")}
    if known and (holder is None or holder["key"] not in remaining):
        update.sets.append(f"{slot_name} = :v{number}")
        update.values[f":v{number}"] = known[min(known)]
    elif not known and holder is not None:
        update.removes.append(slot_name)
    for index, (key, claim) in enumerate(sorted(claims.items())):
        if key in keys or len(remaining) < 2:
            update.names[f"#c{number}_{index}"] = claim["name"]
            update.removes.append(f"#c{number}_{index}")
    if len(remaining) < 2:
        update.settled.add(f"slot:{_label(slot)}")
    if holder is not None and holder["key"] in keys:
        update.settled.add(f"sheet:{_label(slot)}")
    return 1 if known else 0


def _label(slot: Slot) -> str:
    """As seqlane.completion.slot_label: the conflict ids are `slot:<label>` and `sheet:<label>`."""
    lane, read, segment = slot
    return f"L{lane:03d} R{read}" + (f" #{segment:03d}" if segment > 1 else "")


class DynamoCatalog:
    def __init__(self, table_name: str, client=None) -> None:
        self.table_name = table_name
        self.client = client or boto3.client("dynamodb")

    @staticmethod
    def _key(run_id: str, sort_key: str) -> dict[str, Any]:
        return _values({"pk": f"RUN#{run_id}", "sk": sort_key})

    # ---- ingest
    def record_fastq(
        self, run_id: str, sample_id: str, fastq: FastqFile, ordering: str, folder: str | None = None
    ) -> SampleRecord:
        """Record the file in its slot: one conditional write. A later S3 sequencer of the same key wins the slot;
        another key for a taken slot is recorded as a claim next to the slot holder's (a second write), so the
        sample shows a conflict whatever the order. `folder`: the file's parent folder when it may be a v1
        `<Sample_ID>/` folder; when a sample sheet said so (`folder_owners`), nothing is written and the record
        returned (without the file) says where the file belongs."""
        return self._record_value(run_id, sample_id, _file_value(fastq, ordering), folder)

    def _record_value(
        self, run_id: str, sample_id: str, file_value: dict[str, Any], folder: str | None = None
    ) -> SampleRecord:
        slot = (int(file_value["lane"]), int(file_value["read"]), int(file_value["segment"]))
        condition = "(attribute_not_exists(#slot) OR (#slot.#k = :key AND #slot.ordering <= :ordering))"
        values = {":file": file_value, ":ordering": file_value["ordering"], ":key": file_value["key"]}
        if folder is not None:
            condition = "(attribute_not_exists(folder_owners) OR NOT contains(folder_owners, :folder)) AND " + condition
            values[":folder"] = folder
        applied, result = _conditional(
            self.client.update_item,
            TableName=self.table_name,
            Key=self._key(run_id, f"SAMPLE#{sample_id}"),
            UpdateExpression="SET #slot = :file",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#slot": _slot(*slot), "#k": "key"},
            ExpressionAttributeValues=_values(values),
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        if applied:
            return sample_from_item(_item(result["Attributes"]))
        holder = result.get(_slot(*slot))
        if (folder is not None and folder in result.get("folder_owners", ())) or holder is None:
            return sample_from_item(result)  # the file belongs to the sample named by its folder
        if holder["key"] == file_value["key"]:
            return sample_from_item(result)  # an older event of the slot's own file: changes nothing
        # Another key for a taken slot: both keys are recorded as claims; the slot keeps its file.
        response = self.client.update_item(
            TableName=self.table_name,
            Key=self._key(run_id, f"SAMPLE#{sample_id}"),
            UpdateExpression="SET #held = :held, #new = :new",
            ExpressionAttributeNames={"#held": _claim(slot, holder["key"]), "#new": _claim(slot, file_value["key"])},
            ExpressionAttributeValues=_values({":held": holder, ":new": file_value}),
            ReturnValues="ALL_NEW",
        )
        return sample_from_item(_item(response["Attributes"]))

    def add_folder_owners(self, run_id: str, file_sample: str, sample_ids: set[str]) -> None:
        """A v1 sheet: files named `file_sample` (a Sample_Name) in a `<id>/` folder belong to Sample_ID `id`."""
        self.client.update_item(
            TableName=self.table_name,
            Key=self._key(run_id, f"SAMPLE#{file_sample}"),
            UpdateExpression="ADD folder_owners :ids",
            ExpressionAttributeValues=_values({":ids": set(sample_ids)}),
        )

    def move_files(self, run_id: str, source: str, target: str, keys: set[str]) -> None:
        """Re-attribute files recorded under `source` (a Sample_Name) to sample `target`: each file an event
        recorded is recorded under `target` as its own event would be (never the size-less claim the marker's
        listing made for the same key), a key known only from the listing is listed for `target`, then all of
        them are dropped from `source`."""
        item = self._sample_item(run_id, source)
        recorded: dict[str, dict[str, Any]] = {}
        listed: dict[Slot, set[str]] = {}
        for name, value in item.items():
            if not name.startswith((_SLOT_PREFIX, _CLAIM_PREFIX)) or value["key"] not in keys:
                continue
            if value.get("ordering"):  # from the key's own event
                recorded[value["key"]] = value
            else:
                listed.setdefault((int(value["lane"]), int(value["read"]), int(value.get("segment", 1))), set()).add(
                    value["key"]
                )
        for value in recorded.values():
            self._record_value(run_id, target, value)
        only_listed = {
            slot: frozenset(found - set(recorded)) for slot, found in listed.items() if found - set(recorded)
        }
        if only_listed:
            self.record_listing(run_id, target, only_listed)
        self.drop_keys(run_id, source, set(recorded) | {key for found in listed.values() for key in found})

    def drop_keys(self, run_id: str, sample_id: str, keys: set[str]) -> SampleRecord:
        """Forget these keys of the sample (moved to another sample, or no longer in the run folder): a slot
        claimed by one key left holds it, a conflict no longer there stops holding the sample."""
        for _ in range(_MAX_SETTLE_ATTEMPTS):
            item = self._sample_item(run_id, sample_id)
            request = _settle_request(item, keys)
            if request is None:
                return self.sample(run_id, sample_id)
            applied, response = _conditional(
                self.client.update_item,
                TableName=self.table_name,
                Key=self._key(run_id, f"SAMPLE#{sample_id}"),
                ReturnValues="ALL_NEW",
                **request,
            )
            if applied:
                return sample_from_item(_item(response["Attributes"]))
        raise RuntimeError(f"{run_id}/{sample_id}: its files kept changing while {len(keys)} keys were dropped")

    def release_conflict(self, run_id: str, sample_id: str) -> None:
        """Its conflicts are gone: a sample held in CONFLICT is RECEIVING again (and may start)."""
        _conditional(
            self.client.update_item,
            TableName=self.table_name,
            Key=self._key(run_id, f"SAMPLE#{sample_id}"),
            UpdateExpression="REMOVE #status, conflict_at",
            ConditionExpression="#status = :conflict",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=_values({":conflict": SampleStatus.CONFLICT.value}),
        )

    def _sample_item(self, run_id: str, sample_id: str) -> dict[str, Any]:
        response = self.client.get_item(
            TableName=self.table_name, Key=self._key(run_id, f"SAMPLE#{sample_id}"), ConsistentRead=True
        )
        return _item(response.get("Item", {}))

    def report_conflict(self, run_id: str, sample_id: str, conflict_id: str) -> bool:
        """True the first time this conflict of the sample is reported (one SampleConflict event each)."""
        applied, _ = _conditional(
            self.client.update_item,
            TableName=self.table_name,
            Key=self._key(run_id, f"SAMPLE#{sample_id}"),
            UpdateExpression="ADD conflicts_reported :ids",
            ConditionExpression="attribute_not_exists(conflicts_reported) OR NOT contains(conflicts_reported, :id)",
            ExpressionAttributeValues=_values({":ids": {conflict_id}, ":id": conflict_id}),
        )
        return applied

    def hold_in_conflict(self, run_id: str, sample_id: str) -> bool:
        """Status CONFLICT for a sample not yet manifested (one that started keeps its analysis and status)."""
        applied, _ = _conditional(
            self.client.update_item,
            TableName=self.table_name,
            Key=self._key(run_id, f"SAMPLE#{sample_id}"),
            UpdateExpression="SET #status = :conflict, conflict_at = if_not_exists(conflict_at, :now)",
            ConditionExpression="attribute_not_exists(manifest_version)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=_values({":conflict": SampleStatus.CONFLICT.value, ":now": _now()}),
        )
        return applied

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

    def record_listing(self, run_id: str, sample_id: str, listed: dict[Slot, frozenset[str]]) -> None:
        """One page of the marker's listing for one sample, in one write: the reads to wait for, and each listed
        key as a claim on its slot (size and ETag unknown until its own event, which then takes precedence)."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {":slots": {_slot(*slot) for slot in listed}}
        sets = []
        claims = [(slot, key) for slot, keys in sorted(listed.items()) for key in sorted(keys)]
        for number, (slot, key) in enumerate(claims):
            lane, read, segment = slot
            names[f"#c{number}"] = _claim(slot, key)
            value = {"key": key, "lane": lane, "read": read, "segment": segment, "size": 0, "etag": ""}
            values[f":c{number}"] = value | {"ordering": "", "recorded_at": _now()}
            sets.append(f"#c{number} = if_not_exists(#c{number}, :c{number})")
        self.client.update_item(
            TableName=self.table_name,
            Key=self._key(run_id, f"SAMPLE#{sample_id}"),
            UpdateExpression=("SET " + ", ".join(sets) + " " if sets else "") + "ADD expected_slots :slots",
            ExpressionAttributeValues=_values(values),
            **({"ExpressionAttributeNames": names} if names else {}),
        )

    def sheet_chunk_done(self, run_id: str, sheet_id: str, index: int) -> int:
        """Record chunk `index` of a sheet's declarations as done; returns how many of its chunks are."""
        response = self.client.update_item(
            TableName=self.table_name,
            Key=self._key(run_id, "RUN"),
            UpdateExpression="ADD #done :index",
            ExpressionAttributeNames={"#done": f"sheet_chunks_done#{sheet_id}"},
            ExpressionAttributeValues=_values({":index": {str(index)}}),
            ReturnValues="ALL_NEW",
        )
        return len(response["Attributes"][f"sheet_chunks_done#{sheet_id}"]["SS"])

    def samples_page(self, run_id: str, start: str | None, limit: int) -> tuple[list[SampleRecord], str | None]:
        """At most `limit` sample items of the run, from after sort key `start`; and where the next page starts."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :sample)",
            "ExpressionAttributeValues": _values({":pk": f"RUN#{run_id}", ":sample": "SAMPLE#"}),
            "ConsistentRead": True,
            "Limit": limit,
        }
        if start is not None:
            request["ExclusiveStartKey"] = self._key(run_id, start)
        response = self.client.query(**request)
        records = [sample_from_item(_item(raw)) for raw in response["Items"]]
        last = response.get("LastEvaluatedKey")
        return records, _item(last)["sk"] if last else None

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
        """Every sample of the run, and every record that says which folders own a v1 Sample_Name."""
        paginator = self.client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :sample)",
            ExpressionAttributeValues=_values({":pk": f"RUN#{run_id}", ":sample": "SAMPLE#"}),
            ConsistentRead=True,
        )
        return [sample_from_item(_item(raw)) for page in pages for raw in page["Items"]]

    def sample(self, run_id: str, sample_id: str) -> SampleRecord:
        item = self._sample_item(run_id, sample_id)
        return sample_from_item(item) if item else SampleRecord(run_id, sample_id, SampleStatus.RECEIVING)

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
            # A sample held in CONFLICT is never claimed, even by an invocation that read it before the conflict.
            condition="attribute_not_exists(manifest_version) AND (attribute_not_exists(#status) OR #status <> :held)",
            extra_values={":held": SampleStatus.CONFLICT.value},
            returning_current=True,
        )
        if applied:
            return Claim(ClaimOutcome.CLAIMED, version)
        claimed = current.get("manifest_version")
        if claimed is None:
            return Claim(ClaimOutcome.CONFLICT, None)
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
            # The new version starts at attempt 1 and carries nothing of the old one's analyses.
            extra_set=", superseded_versions = list_append(if_not_exists(superseded_versions, :empty), :previous) "
            f"REMOVE {', '.join(f'#a_{name}' for name in (*ATTEMPT_ATTRIBUTES, 'attempt', 'previous_attempts'))}",
            extra_values={":empty": [], ":previous": [previous], ":old": previous},
            extra_names={f"#a_{name}": name for name in (*ATTEMPT_ATTRIBUTES, "attempt", "previous_attempts")},
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
        extra_names: dict[str, str] | None = None,
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
            ExpressionAttributeNames={"#status": "status", **(extra_names or {})},
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

    # ---- final states of analysis attempts (the catalog function); see seqlane.catalog
    def finish_analysis(
        self, run_id: str, sample_id: str, version: str, attempt: int, *, status: SampleStatus, details: dict[str, Any]
    ) -> bool:
        """Enter `status` for this version and attempt, only forward: from a state that is not final, or again
        from the same final state while its event is unpublished (a crash between the write and the publish)."""
        finals = sorted(s.value for s in FINAL_STATUSES)
        final_names = {f":final{i}": value for i, value in enumerate(finals)}
        same_attempt = _same_attempt(attempt)
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
        same_attempt = _same_attempt(attempt)
        _conditional(
            self.client.update_item,
            TableName=self.table_name,
            Key=self._key(run_id, f"SAMPLE#{sample_id}"),
            UpdateExpression="SET outcome_published_at = :now",
            ConditionExpression=f"manifest_version = :version AND ({same_attempt})",
            ExpressionAttributeValues=_values({":now": _now(), ":version": version, ":attempt": attempt}),
        )

    # ---- analysis attempts (seqlane.attempts)
    def analysis_state(self, run_id: str, sample_id: str) -> AnalysisState | None:
        response = self.client.get_item(
            TableName=self.table_name, Key=self._key(run_id, f"SAMPLE#{sample_id}"), ConsistentRead=True
        )
        if "Item" not in response:
            return None
        item = _item(response["Item"])
        return AnalysisState(
            status=SampleStatus(item.get("status", SampleStatus.RECEIVING)),
            version=item.get("manifest_version"),
            manifest_uri=item.get("manifest_uri"),
            attempt=int(item.get("attempt", 1)),
            started="execution_started_at" in item,
            failure_reason=item.get("failure_reason"),
        )

    def begin_attempt(self, run_id: str, sample_id: str, version: str, attempt: int, execution_name: str) -> bool:
        retryable = {f":retryable{i}": status.value for i, status in enumerate(sorted(RETRYABLE_STATUSES))}
        same_attempt = _same_attempt(attempt)
        applied, _ = _conditional(
            self.client.update_item,
            TableName=self.table_name,
            Key=self._key(run_id, f"SAMPLE#{sample_id}"),
            # The attempt that ended is kept in previous_attempts; the new one starts with nothing of it.
            UpdateExpression="SET attempt = :next, #status = :manifested, execution_name = :name, "
            "previous_attempts = list_append(if_not_exists(previous_attempts, :empty), :ended) "
            f"REMOVE {', '.join(f'#a_{name}' for name in ATTEMPT_ATTRIBUTES)}",
            ConditionExpression=f"manifest_version = :version AND ({same_attempt}) "
            f"AND #status IN ({', '.join(retryable)})",
            ExpressionAttributeNames={"#status": "status", **{f"#a_{name}": name for name in ATTEMPT_ATTRIBUTES}},
            ExpressionAttributeValues=_values(
                {
                    ":next": attempt + 1,
                    ":manifested": SampleStatus.MANIFESTED.value,
                    ":name": execution_name,
                    ":empty": [],
                    ":ended": [{"attempt": attempt, "ended_at": _now()}],
                    ":version": version,
                    ":attempt": attempt,
                    **retryable,
                }
            ),
        )
        return applied
