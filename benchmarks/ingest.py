"""Ingest at scale, on moto with the real adapters (DynamoCatalog, S3ObjectStore, StepFunctionsOrchestrator).

1. Per-event handler time for fresh R1 uploads (each a WAITING record-and-check event) in a run of 100 objects and
   in one of 10,000, timed in alternating blocks so that drift in the emulator hits both alike: per-event work must
   not grow with the run (no listing of the run folder per event).
2. Events per second against bare conditional DynamoDB writes on the same moto, in the same alternating blocks.
   A waiting event makes one DynamoDB call (the conditional slot update); the run is read only when a sample's
   own reads are all in. The share measures what the handler adds to that one write.
3. A burst: 1,000 samples x 2 lanes x 2 reads, a sample sheet and a completion marker, delivered shuffled with 20%
   duplicates: exactly one execution per sample, none lost, none doubled.
4. Bounded work per invocation: runs of 100 and 10,000 samples (1 lane x 2 reads each, recorded), then a sample
   sheet declaring them all and the completion marker. The sheet and the marker start work that ingest splits
   into messages on its own queue (seqlane.closing); each message is one invocation here, timed alone. The
   longest single invocation at 10,000 samples / at 100 must be <= 1.5, and under 5 s.
The completion marker lists the run folder once per run by design (not per event): no marker is among the timed
events of 1, and the runs of 1 have neither marker nor sample sheet, so nothing starts there. Their setup writes the
objects with put_object and the catalog's sample items directly (batch writes, about 4x faster than 10,000 handled
events); the items are checked against one sample recorded through the service.
Every AWS call the adapters make is counted per operation, so a listing per event would show in the figures.
Figures: human-readable lines on stderr, one JSON object as the last line of stdout.
Run: .venv/bin/python benchmarks/ingest.py
"""

import itertools
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers"), str(ROOT)]
REGION = "eu-west-2"
PASS_MACHINE = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
RUN_SIZES = (100, 10_000)
TIMED_EVENTS = 200  # per run size, and as many bare writes
BLOCK = 20  # events per alternating block
BURST_SAMPLES = 1_000
BURST_LANES = (1, 2)
DUPLICATE_SHARE = 0.2
SEED = 42
TARGET_MAX_RATIO = 1.5
TARGET_MIN_SHARE = 0.5
FANOUT_SIZES = (100, 10_000)
TARGET_MAX_INVOCATION_RATIO = 1.5
TARGET_MAX_INVOCATION_SECONDS = 5.0

_sequencer = itertools.count(0x100)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fastq_name(sample_id: str, number: int, lane: int, read: int) -> str:
    return f"{sample_id}_S{number}_L{lane:03d}_R{read}_001.fastq.gz"


class Stack:
    """One catalog table, ingest and results buckets, a Pass state machine and an IngestService over them."""

    def __init__(self, name: str, clients: dict) -> None:
        from seqlane.adapters.aws import S3ObjectStore, StepFunctionsOrchestrator
        from seqlane.adapters.catalog_table import DynamoCatalog
        from seqlane.ingest import IngestService

        self.ddb, self.s3, self.sfn = clients["dynamodb"], clients["s3"], clients["stepfunctions"]
        self.calls: Counter[str] = Counter()  # the adapters' AWS calls, by service.operation
        self.call_seconds = 0.0
        self.table, self.ingest, self.results = f"catalog-{name}", f"ingest-{name}", f"results-{name}"
        create_table(self.ddb, self.table)
        for bucket in (self.ingest, self.results):
            self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.state_machine_arn = self.sfn.create_state_machine(
            name=f"analysis-{name}", definition=json.dumps(PASS_MACHINE), roleArn="arn:aws:iam::123456789012:role/x"
        )["stateMachineArn"]
        self.published: list[tuple[str, dict]] = []
        self.service = IngestService(
            catalog=DynamoCatalog(self.table, CountedClient(self, "dynamodb", self.ddb)),
            store=S3ObjectStore(CountedClient(self, "s3", self.s3)),
            orchestrator=StepFunctionsOrchestrator(self.state_machine_arn, CountedClient(self, "sfn", self.sfn)),
            events=self,  # a recording publisher
            ingest_bucket=self.ingest,
            results_bucket=self.results,
            region=REGION,
            dragen_version="4.3.6",
            reference_uri="s3://refs/hg38/",
        )

    def publish(self, detail_type: str, detail: dict) -> None:
        self.published.append((detail_type, detail))

    def upload(self, key: str, body: bytes = b""):
        """The object is written, then its event made (each with a later S3 sequencer)."""
        from seqlane.uploads import UploadedObject

        self.s3.put_object(Bucket=self.ingest, Key=key, Body=body)
        return UploadedObject(self.ingest, key, len(body) or 1024, f"etag-{key}", format(next(_sequencer), "X"), REGION)

    def execution_names(self) -> list[str]:
        pages = self.sfn.get_paginator("list_executions").paginate(stateMachineArn=self.state_machine_arn)
        return [execution["name"] for page in pages for execution in page["executions"]]


class CountedClient:
    """A boto3 client whose calls are counted and timed on the stack (paginators pass through uncounted)."""

    def __init__(self, stack: Stack, service: str, client) -> None:
        self._stack, self._service, self._client = stack, service, client

    def __getattr__(self, name: str):
        attribute = getattr(self._client, name)
        if not callable(attribute) or name == "get_paginator":
            return attribute

        def counted(*args, **kwargs):
            started = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self._stack.call_seconds += time.perf_counter() - started
                self._stack.calls[f"{self._service}.{name}"] += 1

        return counted


def create_table(ddb, name: str) -> None:
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )


def populated_run(clients: dict, objects: int) -> tuple[Stack, str]:
    """A run of `objects` FASTQs (objects / 4 samples x 2 lanes x 2 reads) in the bucket and in the catalog, with no
    marker and no sheet. The first sample is recorded through the service; the others' items are written directly,
    in the same shape (checked against the first)."""
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    from seqlane.ingest import Disposition

    stack, run = Stack(f"n{objects}", clients), f"241121_A01234_{objects:04d}_BHXXXXXXXX"
    serializer, deserializer = TypeSerializer(), TypeDeserializer()
    started = time.perf_counter()
    items = []
    for number in range(1, objects // 4 + 1):
        sample_id = f"P{number:05d}"
        uploads = {
            (lane, read): stack.upload(f"{run}/{fastq_name(sample_id, number, lane, read)}")
            for lane in (1, 2)
            for read in (1, 2)
        }
        item = catalog_item(run, sample_id, uploads)
        if number == 1:
            for upload in uploads.values():
                assert stack.service.handle(upload).disposition is Disposition.WAITING
            key = {"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}}
            recorded = stack.ddb.get_item(TableName=stack.table, Key=key)["Item"]
            recorded = {name: deserializer.deserialize(value) for name, value in recorded.items()}
            assert _without_times(recorded) == _without_times(item), (recorded, item)
        else:
            items.append({"PutRequest": {"Item": {name: serializer.serialize(v) for name, v in item.items()}}})
        if number % 500 == 0:
            say(f"  run of {objects}: {number * 4} objects written")
    for start in range(0, len(items), 25):
        response = stack.ddb.batch_write_item(RequestItems={stack.table: items[start : start + 25]})
        assert not response.get("UnprocessedItems"), response
    say(f"setup: run of {objects} objects in {time.perf_counter() - started:.1f} s")
    return stack, run


def catalog_item(run: str, sample_id: str, uploads: dict) -> dict:
    """The sample item DynamoCatalog.record_fastq leaves after these uploads (as Python values)."""
    item = {"pk": f"RUN#{run}", "sk": f"SAMPLE#{sample_id}"}
    for (lane, read), upload in uploads.items():
        item[f"fastq#L{lane:03d}#R{read}"] = {
            "key": upload.key,
            "lane": lane,
            "read": read,
            "size": upload.size,
            "etag": upload.etag,
            "segment": 1,
            "ordering": upload.ordering,
            "recorded_at": "2024-11-21T00:00:00.000+00:00",
        }
    return item


def _without_times(item: dict) -> dict:
    return {
        name: {k: v for k, v in value.items() if k != "recorded_at"} if isinstance(value, dict) else value
        for name, value in item.items()
    }


def timed_handle(stack: Stack, run: str, number: int) -> tuple[float, float]:
    """One fresh sample's R1: a WAITING record-and-check event. The object is written before the clock starts.
    Returns the handler's time and the part of it spent in AWS calls."""
    from seqlane.ingest import Disposition

    upload = stack.upload(f"{run}/{fastq_name(f'T{number:05d}', number, 1, 1)}")
    in_calls = stack.call_seconds
    started = time.perf_counter()
    outcome = stack.service.handle(upload)
    elapsed = time.perf_counter() - started
    assert outcome.disposition is Disposition.WAITING, outcome
    return elapsed, stack.call_seconds - in_calls


def timed_bare_write(ddb, table: str, number: int) -> float:
    """A conditional update like the catalog's slot write, on a fresh item each time."""
    started = time.perf_counter()
    ddb.update_item(
        TableName=table,
        Key={"pk": {"S": "RUN#bare"}, "sk": {"S": f"SAMPLE#B{number:05d}"}},
        UpdateExpression="SET #slot = :file",
        ConditionExpression="attribute_not_exists(#slot) OR #slot.ordering <= :ordering",
        ExpressionAttributeNames={"#slot": "fastq#L001#R1"},
        ExpressionAttributeValues={
            ":file": {"M": {"key": {"S": f"bare/B{number:05d}_R1.fastq.gz"}, "ordering": {"S": f"{number:032d}"}}},
            ":ordering": {"S": f"{number:032d}"},
        },
    )
    return time.perf_counter() - started


def scaling(clients: dict) -> dict:
    runs = {size: populated_run(clients, size) for size in RUN_SIZES}
    bare_table = "bare-writes"
    create_table(clients["dynamodb"], bare_table)
    seconds: dict[str, list[float]] = {str(size): [] for size in RUN_SIZES} | {"bare": []}
    own: dict[int, list[float]] = {size: [] for size in RUN_SIZES}  # handler time outside AWS calls
    for stack, _ in runs.values():
        stack.calls.clear()
    for block in range(TIMED_EVENTS // BLOCK):
        for number in range(block * BLOCK + 1, (block + 1) * BLOCK + 1):
            for size, (stack, run) in runs.items():
                elapsed, in_calls = timed_handle(stack, run, number)
                seconds[str(size)].append(elapsed)
                own[size].append(elapsed - in_calls)
            seconds["bare"].append(timed_bare_write(clients["dynamodb"], bare_table, number))
    calls_per_event = {
        size: {operation: count / TIMED_EVENTS for operation, count in sorted(stack.calls.items())}
        for size, (stack, _) in runs.items()
    }
    small, large = (seconds[str(size)] for size in RUN_SIZES)
    ratio = statistics.median(large) / statistics.median(small)
    events_per_second = len(large) / sum(large)
    writes_per_second = len(seconds["bare"]) / sum(seconds["bare"])
    for size in RUN_SIZES:
        times = seconds[str(size)]
        say(
            f"run of {size:>6} objects: {statistics.median(times) * 1000:.2f} ms median, "
            f"{statistics.mean(times) * 1000:.2f} ms mean per event ({len(times)} events), "
            f"{statistics.median(own[size]) * 1000:.2f} ms median outside AWS calls; "
            f"AWS calls per event: {calls_per_event[size]}"
        )
    say(f"ratio 10,000 vs 100 (median): {ratio:.2f} (target <= {TARGET_MAX_RATIO})")
    say(
        f"ingest {events_per_second:.0f} events/s vs bare conditional writes {writes_per_second:.0f} writes/s: "
        f"share {events_per_second / writes_per_second:.2f} (target >= {TARGET_MIN_SHARE})"
    )
    figures = {}
    for size in RUN_SIZES:
        figures[f"per_event_ms_median_{size}"] = round(statistics.median(seconds[str(size)]) * 1000, 3)
        figures[f"per_event_ms_mean_{size}"] = round(statistics.mean(seconds[str(size)]) * 1000, 3)
        figures[f"handler_own_ms_median_{size}"] = round(statistics.median(own[size]) * 1000, 3)
        figures[f"aws_calls_per_event_{size}"] = calls_per_event[size]
    return figures | {
        "timed_events_per_run_size": TIMED_EVENTS,
        "ratio_10000_vs_100": round(ratio, 3),
        "target_max_ratio": TARGET_MAX_RATIO,
        "ingest_events_per_second": round(events_per_second, 1),
        "bare_conditional_writes_per_second": round(writes_per_second, 1),
        "ingest_share_of_bare_writes": round(events_per_second / writes_per_second, 3),
        "target_min_share": TARGET_MIN_SHARE,
    }


def sample_sheet(sample_ids: list[str]) -> str:
    rows = [f"{lane},{sample_id},ACGT" for sample_id in sample_ids for lane in BURST_LANES]
    return "[Header]\nFileFormatVersion,2\n\n[BCLConvert_Data]\nLane,Sample_ID,Index\n" + "\n".join(rows) + "\n"


def burst(clients: dict) -> dict:
    from seqlane.ingest import Disposition

    stack, run = Stack("burst", clients), "241122_A01234_0043_BHYYYYYYYY"
    sample_ids = [f"S{number:04d}" for number in range(1, BURST_SAMPLES + 1)]
    started = time.perf_counter()
    events = [
        stack.upload(f"{run}/{fastq_name(sample_id, number, lane, read)}")
        for number, sample_id in enumerate(sample_ids, 1)
        for lane in BURST_LANES
        for read in (1, 2)
    ]
    events.append(stack.upload(f"{run}/SampleSheet.csv", sample_sheet(sample_ids).encode()))
    events.append(stack.upload(f"{run}/CopyComplete.txt"))
    say(f"setup: burst run of {len(events)} objects in {time.perf_counter() - started:.1f} s")
    rng = random.Random(SEED)
    duplicates = round(len(events) * DUPLICATE_SHARE)
    deliveries = events + rng.sample(events, duplicates)
    rng.shuffle(deliveries)
    started = time.perf_counter()
    outcomes = [stack.service.handle(upload) for upload in deliveries]
    wall = time.perf_counter() - started
    names = stack.execution_names()
    per_sample = Counter(
        next((sample_id for sample_id in sample_ids if name.startswith(f"{run}-{sample_id}-")), None) for name in names
    )
    reported: Counter[str] = Counter()  # which invocation reported each start: exactly one per sample
    for outcome in outcomes:
        if outcome.disposition is Disposition.STARTED:
            reported[outcome.sample_id] += 1
        elif outcome.disposition in (Disposition.SHEET_READ, Disposition.RUN_CLOSED):
            reported.update(name.removeprefix(f"{run}-").split("-")[0] for name in outcome.started)
    exactly_once = (
        len(names) == len(set(names)) == BURST_SAMPLES
        and set(per_sample) == set(sample_ids)
        and set(per_sample.values()) == {1}
        and set(reported) == set(sample_ids)
        and set(reported.values()) == {1}
    )
    dispositions = Counter(outcome.disposition.value for outcome in outcomes)
    say(
        f"burst: {len(deliveries)} deliveries ({duplicates} duplicates) of {len(events)} objects, "
        f"{len(names)} executions for {BURST_SAMPLES} samples in {wall:.1f} s ({len(deliveries) / wall:.0f} events/s)"
    )
    say(f"burst outcomes: {dict(sorted(dispositions.items()))}; exactly once: {exactly_once}")
    assert exactly_once, (len(names), len(set(names)), per_sample.most_common(3), reported.most_common(3))
    return {
        "burst_samples": BURST_SAMPLES,
        "burst_objects": len(events),
        "burst_deliveries": len(deliveries),
        "burst_duplicates": duplicates,
        "burst_executions_started": len(names),
        "burst_starts_reported": sum(reported.values()),
        "burst_wall_seconds": round(wall, 2),
        "burst_events_per_second": round(len(deliveries) / wall, 1),
        "burst_exactly_once": exactly_once,
        "sample_starts_by_outcome": {
            "STARTED": dispositions[Disposition.STARTED.value],
            "SHEET_READ": sum(len(o.started) for o in outcomes if o.disposition is Disposition.SHEET_READ),
            "RUN_CLOSED": sum(len(o.started) for o in outcomes if o.disposition is Disposition.RUN_CLOSED),
        },
        "burst_outcomes": dict(sorted(dispositions.items())),
    }


class MemoryQueue:
    """Ingest's own queue, in memory: what the service sends is handled later, one message per invocation."""

    def __init__(self) -> None:
        self.messages: list[dict] = []

    def send(self, messages: list[dict]) -> None:
        self.messages.extend(messages)


def fanout_run(clients: dict, samples: int) -> dict:
    from boto3.dynamodb.types import TypeSerializer

    from seqlane.closing import WORK
    from seqlane.ingest import Disposition

    stack, run = Stack(f"f{samples}", clients), f"241123_A01234_{samples % 10_000:04d}_BHZZZZZZZZ"
    queue = MemoryQueue()
    stack.service.work = queue
    serializer = TypeSerializer()
    started = time.perf_counter()
    sample_ids = [f"Q{number:05d}" for number in range(1, samples + 1)]
    items = []
    for number, sample_id in enumerate(sample_ids, 1):
        uploads = {(1, read): stack.upload(f"{run}/{fastq_name(sample_id, number, 1, read)}") for read in (1, 2)}
        if number == 1:  # recorded through the service; the others' items written directly in the same shape
            for upload in uploads.values():
                assert stack.service.handle(upload).disposition is Disposition.WAITING
        else:
            item = catalog_item(run, sample_id, uploads)
            items.append({"PutRequest": {"Item": {name: serializer.serialize(v) for name, v in item.items()}}})
    for start in range(0, len(items), 25):
        response = stack.ddb.batch_write_item(RequestItems={stack.table: items[start : start + 25]})
        assert not response.get("UnprocessedItems"), response
    rows = "\n".join(f"1,{sample_id},ACGT" for sample_id in sample_ids)
    sheet = f"[Header]\nFileFormatVersion,2\n\n[BCLConvert_Data]\nLane,Sample_ID,Index\n{rows}\n".encode()
    sheet_upload = stack.upload(f"{run}/SampleSheet.csv", sheet)
    marker_upload = stack.upload(f"{run}/CopyComplete.txt")
    say(f"setup: fan-out run of {samples} samples in {time.perf_counter() - started:.1f} s")

    longest: dict[str, float] = {}
    durations: dict[str, list[float]] = {}
    invocations: Counter[str] = Counter()
    calls_most: dict[str, int] = {}

    def timed(kind: str, work) -> None:
        calls_before = sum(stack.calls.values())
        begun = time.perf_counter()
        work()
        elapsed = time.perf_counter() - begun
        longest[kind] = max(longest.get(kind, 0.0), elapsed)
        durations.setdefault(kind, []).append(elapsed)
        calls_most[kind] = max(calls_most.get(kind, 0), sum(stack.calls.values()) - calls_before)
        invocations[kind] += 1

    begun = time.perf_counter()
    for kind, upload in (("sheet-event", sheet_upload), ("marker-event", marker_upload)):
        timed(kind, lambda upload=upload: stack.service.handle(upload))
        while queue.messages:
            message = queue.messages.pop(0)
            timed(message[WORK], lambda message=message: stack.service.handle_work(message))
    wall = time.perf_counter() - begun
    names = stack.execution_names()
    assert len(names) == len(set(names)) == samples, (len(names), len(set(names)))
    say(
        f"fan-out, {samples} samples: {sum(invocations.values())} invocations in {wall:.1f} s, all {samples} started "
        f"once; longest invocation by kind (ms): "
        + ", ".join(f"{kind} {seconds * 1000:.1f}" for kind, seconds in sorted(longest.items()))
    )
    return {
        "invocations": dict(sorted(invocations.items())),
        "longest_ms": {kind: round(seconds * 1000, 1) for kind, seconds in sorted(longest.items())},
        "median_ms": {kind: round(statistics.median(times) * 1000, 1) for kind, times in sorted(durations.items())},
        "most_aws_calls": dict(sorted(calls_most.items())),
        "longest_invocation_ms": round(max(longest.values()) * 1000, 1),
        "wall_seconds": round(wall, 1),
        "executions": len(names),
    }


def fanout(clients: dict) -> dict:
    runs = {size: fanout_run(clients, size) for size in FANOUT_SIZES}
    small, large = (runs[size]["longest_invocation_ms"] for size in FANOUT_SIZES)
    ratio = large / small
    say(
        f"longest single invocation: {large:.1f} ms at {FANOUT_SIZES[1]} samples vs {small:.1f} ms at "
        f"{FANOUT_SIZES[0]}: ratio {ratio:.2f} (target <= {TARGET_MAX_INVOCATION_RATIO}, and under "
        f"{TARGET_MAX_INVOCATION_SECONDS} s)"
    )
    return {f"fanout_{size}": figures for size, figures in runs.items()} | {
        "longest_invocation_ratio_10000_vs_100": round(ratio, 3),
        "target_max_invocation_ratio": TARGET_MAX_INVOCATION_RATIO,
        "longest_invocation_seconds_10000": round(large / 1000, 3),
        "target_max_invocation_seconds": TARGET_MAX_INVOCATION_SECONDS,
    }


def main() -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        os.environ[name] = value
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    import logging

    import boto3
    from moto import mock_aws

    logging.disable(logging.WARNING)
    started = time.perf_counter()
    with mock_aws():
        clients = {name: boto3.client(name, region_name=REGION) for name in ("dynamodb", "s3", "stepfunctions")}
        figures = scaling(clients) | burst(clients) | fanout(clients)
    figures["total_seconds"] = round(time.perf_counter() - started, 1)
    say(f"total: {figures['total_seconds']} s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
