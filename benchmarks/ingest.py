"""Ingest at scale, on moto with the real adapters (DynamoCatalog, S3ObjectStore, StepFunctionsOrchestrator).

1. Per-event handler time for fresh R1 uploads (each a WAITING record-and-check event) in a run of 100 objects and
   in one of 10,000, timed in alternating blocks so that drift in the emulator hits both alike: per-event work must
   not grow with the run (no listing of the run folder per event).
2. Events per second against bare conditional DynamoDB writes on the same moto, in the same alternating blocks.
   An event makes two DynamoDB calls (the conditional slot update and a consistent read of the run), so the share
   measures the handler's overhead per call.
3. A burst: 1,000 samples x 2 lanes x 2 reads, a sample sheet and a completion marker, delivered shuffled with 20%
   duplicates: exactly one execution per sample, none lost, none doubled.
The completion marker lists the run folder once per run by design (not per event): no marker is among the timed
events of 1, and the runs of 1 have neither marker nor sample sheet, so nothing starts there.
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
        self.table, self.ingest, self.results = f"catalog-{name}", f"ingest-{name}", f"results-{name}"
        create_table(self.ddb, self.table)
        for bucket in (self.ingest, self.results):
            self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.state_machine_arn = self.sfn.create_state_machine(
            name=f"analysis-{name}", definition=json.dumps(PASS_MACHINE), roleArn="arn:aws:iam::123456789012:role/x"
        )["stateMachineArn"]
        self.published: list[tuple[str, dict]] = []
        self.service = IngestService(
            catalog=DynamoCatalog(self.table, self.ddb),
            store=S3ObjectStore(self.s3),
            orchestrator=StepFunctionsOrchestrator(self.state_machine_arn, self.sfn),
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


def create_table(ddb, name: str) -> None:
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )


def populated_run(clients: dict, objects: int) -> tuple[Stack, str]:
    """A run of `objects` FASTQs (objects / 4 samples x 2 lanes x 2 reads), each recorded through the service
    (no marker, no sheet: all WAITING)."""
    from seqlane.ingest import Disposition

    stack, run = Stack(f"n{objects}", clients), f"241121_A01234_{objects:04d}_BHXXXXXXXX"
    started = time.perf_counter()
    for number in range(1, objects // 4 + 1):
        for lane in (1, 2):
            for read in (1, 2):
                upload = stack.upload(f"{run}/{fastq_name(f'P{number:05d}', number, lane, read)}")
                assert stack.service.handle(upload).disposition is Disposition.WAITING
        if number % 500 == 0:
            say(f"  run of {objects}: {number * 4} objects recorded")
    say(f"setup: run of {objects} objects in {time.perf_counter() - started:.1f} s")
    return stack, run


def timed_handle(stack: Stack, run: str, number: int) -> float:
    """One fresh sample's R1: a WAITING record-and-check event. The object is written before the clock starts."""
    from seqlane.ingest import Disposition

    upload = stack.upload(f"{run}/{fastq_name(f'T{number:05d}', number, 1, 1)}")
    started = time.perf_counter()
    outcome = stack.service.handle(upload)
    elapsed = time.perf_counter() - started
    assert outcome.disposition is Disposition.WAITING, outcome
    return elapsed


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
    for block in range(TIMED_EVENTS // BLOCK):
        for number in range(block * BLOCK + 1, (block + 1) * BLOCK + 1):
            for size, (stack, run) in runs.items():
                seconds[str(size)].append(timed_handle(stack, run, number))
            seconds["bare"].append(timed_bare_write(clients["dynamodb"], bare_table, number))
    small, large = (seconds[str(size)] for size in RUN_SIZES)
    ratio = statistics.median(large) / statistics.median(small)
    events_per_second = len(large) / sum(large)
    writes_per_second = len(seconds["bare"]) / sum(seconds["bare"])
    for size in RUN_SIZES:
        times = seconds[str(size)]
        say(
            f"run of {size:>6} objects: {statistics.median(times) * 1000:.2f} ms median, "
            f"{statistics.mean(times) * 1000:.2f} ms mean per event ({len(times)} events)"
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
        figures = scaling(clients) | burst(clients)
    figures["total_seconds"] = round(time.perf_counter() - started, 1)
    say(f"total: {figures['total_seconds']} s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
