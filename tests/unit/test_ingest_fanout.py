"""Closing a run and reading a sheet as bounded work messages on ingest's own queue (seqlane.closing), on moto:
whatever the order and duplication of the messages, each sample starts once, and no message's work grows with
the run."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto import mock_aws

from seqlane import closing
from seqlane.ingest import Disposition
from tests.unit.test_ingest import RUN, Env


@dataclass
class ChaoticQueue:
    """Ingest's queue as SQS may behave: messages come back in any order, some of them twice."""

    rng: random.Random
    duplicate_share: float = 0.25
    pending: list[dict[str, Any]] = field(default_factory=list)
    unique: set[str] = field(default_factory=set)  # each message sent, however often

    @property
    def sent(self) -> Counter:
        return Counter(json.loads(message)[closing.WORK] for message in self.unique)

    def send(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            self.unique.add(json.dumps(message, sort_keys=True))
            self.pending.append(message)
            if self.rng.random() < self.duplicate_share:
                self.pending.append(dict(message))

    def take(self) -> dict[str, Any] | None:
        if not self.pending:
            return None
        return self.pending.pop(self.rng.randrange(len(self.pending)))


def drain(env: Env, queue: ChaoticQueue, calls: Counter) -> tuple[list[str], int]:
    """Handle every queued message as a Lambda invocation would; returns the starts and the most catalog and S3
    calls one message made."""
    started, most = [], 0
    while (message := queue.take()) is not None:
        before = sum(calls.values())
        outcome = env.service.handle_work(message)
        assert outcome.disposition is Disposition.WORK_DONE
        started += outcome.started
        most = max(most, sum(calls.values()) - before)
    return started, most


def counting(env: Env, calls: Counter) -> None:
    """Count every DynamoDB and S3 call the service makes."""
    for client in (env.ddb, env.s3):
        client.meta.events.register("before-call.*.*", lambda model, **_: calls.update([model.name]))


def upload_run(env: Env, samples: int, sheet: bool) -> list:
    uploads = [
        env.upload(f"P{number:04d}_S{number}_L001_R{read}_001.fastq.gz")
        for number in range(1, samples + 1)
        for read in (1, 2)
    ]
    if sheet:
        rows = "\n".join(f"1,P{number:04d},ACGT" for number in range(1, samples + 1))
        body = f"[Header]\nFileFormatVersion,2\n\n[BCLConvert_Data]\nLane,Sample_ID,Index\n{rows}\n".encode()
        uploads.append(env.upload("SampleSheet.csv", body=body))
    return uploads


@pytest.fixture
def world(aws_credentials, monkeypatch):
    monkeypatch.setattr(closing, "LIST_PAGE", 7)  # several listing pages, a sample's keys split over two
    monkeypatch.setattr(closing, "ADVANCE_PAGE", 5)
    monkeypatch.setattr(closing, "DECLARE_CHUNK", 4)
    import seqlane.ingest as ingest

    for name in ("LIST_PAGE", "ADVANCE_PAGE", "DECLARE_CHUNK"):
        monkeypatch.setattr(ingest, name, getattr(closing, name))
    with mock_aws():
        yield Env()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("sheet", [False, True], ids=["marker", "sheet-and-marker"])
def test_ingest_fanout_starts_each_sample_once_whatever_the_message_order(world, seed, sheet):
    # Given a run of 12 samples, its files' events handled, then its sheet (or not) and its marker
    env, rng = world, random.Random(seed)
    queue = ChaoticQueue(rng)
    env.service.work = queue
    uploads = upload_run(env, 12, sheet)
    rng.shuffle(uploads)
    outcomes = [env.service.handle(upload) for upload in [*uploads, env.marker()]]

    # When the work they sent is handled in any order, some messages twice
    started, _ = drain(env, queue, Counter())

    # Then every sample started exactly once, reported once
    reported = started + [name for outcome in outcomes for name in outcome.started]
    assert sorted(env.executions()) == sorted(set(env.executions()))
    assert len(env.executions()) == 12
    assert sorted(reported) == sorted(env.executions())
    # And the run was listed a page at a time, and (with a sheet) declared a chunk at a time
    assert queue.sent[closing.CLOSE_RUN] == 4  # 25 keys in pages of 7
    assert queue.sent[closing.DECLARE_SAMPLES] == (3 if sheet else 0)


def test_ingest_fanout_work_per_message_does_not_grow_with_the_run(world):
    # Given two runs, of 6 and of 60 samples, closed by their markers
    env = world
    most = {}
    for samples, run in ((6, RUN), (60, RUN.replace("0042", "0043"))):
        queue, calls = ChaoticQueue(random.Random(1), duplicate_share=0.0), Counter()
        env.service.work = queue
        for number in range(1, samples + 1):
            for read in (1, 2):
                env.service.handle(env.upload(f"P{number:04d}_S{number}_L001_R{read}_001.fastq.gz", run=run))
        counting(env, calls)
        env.service.handle(env.marker(run=run))
        # When every message is handled
        _, most[samples] = drain(env, queue, calls)
        assert len(env.executions(run=run)) == samples

    # Then the most AWS calls any one message made is the same for ten times the samples
    assert most[60] <= most[6] + 2, most


def test_ingest_fanout_sample_started_while_listing_is_not_started_twice(world):
    # Given a run whose marker's listing is under way
    env = world
    queue = ChaoticQueue(random.Random(3))
    env.service.work = queue
    uploads = upload_run(env, 5, sheet=False)
    for upload in uploads[:-1]:
        env.service.handle(upload)
    env.service.handle(env.marker())
    first = queue.take()
    env.service.handle_work(first)  # one page listed

    # When the last file's event arrives in the middle of it, and then the rest of the work is done
    env.service.handle(uploads[-1])
    drain(env, queue, Counter())

    # Then each of the 5 samples started once
    assert len(env.executions()) == 5 == len(set(env.executions()))
