"""Ingest: from one uploaded object to, when its sample is complete, one manifest and one started analysis.

Every step is safe to repeat, so at-least-once and out-of-order delivery gives one manifest and one execution
per sample version: files are recorded per (lane, read, segment) slot, the manifest version is claimed with a
conditional write, manifests are written at version-named keys, and executions are named after the manifest version.
Per event the work is O(1) in the size of the run; only a completion marker or a sample sheet looks at the whole run.

Every uploaded key ends in exactly one place: a sample's slot (then its manifest), ignored with a reason, or a
conflict with a reason (two keys for one slot, or a lane or read the sample sheet does not declare): a sample in
conflict is held, nothing starts for it, and one `SampleConflict` event names the keys of each conflict.
"""

from __future__ import annotations

import hashlib
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from seqlane.closing import (
    ADVANCE_PAGE,
    ADVANCE_RUN,
    ADVANCE_SAMPLE,
    CLOSE_RUN,
    DECLARE_CHUNK,
    DECLARE_SAMPLES,
    LIST_PAGE,
    WORK,
    UnusableWork,
    work_kind,
)
from seqlane.completion import Conflict, conflicts, is_ready, is_sample, missing_reads, sample_keys
from seqlane.manifest import FastqFile, Manifest, Route
from seqlane.naming import (
    CompletionMarkerKey,
    FastqKey,
    IgnoredKey,
    SampleSheetKey,
    classify_key,
)
from seqlane.observability import logger
from seqlane.ports import (
    Catalog,
    ClaimOutcome,
    EventPublisher,
    ObjectStore,
    Orchestrator,
    RunState,
    SampleRecord,
    SampleStatus,
    Slot,
    WorkQueue,
)
from seqlane.samplesheet import SampleSheetError, not_utf8, parse_sample_sheet
from seqlane.uploads import UploadedObject

FILE_IGNORED = "FileIgnored"
SAMPLE_REUPLOADED = "SampleReuploaded"
SAMPLE_SHEET_REJECTED = "SampleSheetRejected"
SAMPLE_CONFLICT = "SampleConflict"
UNSORTED_RUN = "_unsorted"  # where keys outside any run folder are recorded


class Disposition(StrEnum):
    IGNORED = "IGNORED"
    WAITING = "WAITING"  # recorded; the sample or the run is not complete yet
    STARTED = "STARTED"
    ALREADY_STARTED = "ALREADY_STARTED"
    REUPLOADED = "REUPLOADED"  # content changed after the manifest was written: a new version started, reported
    RUN_CLOSED = "RUN_CLOSED"
    SHEET_READ = "SHEET_READ"
    SHEET_REJECTED = "SHEET_REJECTED"
    CONFLICT = "CONFLICT"  # the sample is held: two keys claim one slot, or the sheet does not declare the file
    WORK_DONE = "WORK_DONE"  # one bounded part of closing a run or reading a sheet (seqlane.closing)


@dataclass(frozen=True)
class Outcome:
    disposition: Disposition
    key: str
    run_id: str | None = None
    sample_id: str | None = None
    detail: str = ""
    started: tuple[str, ...] = ()


class WrongRegion(ValueError):
    """An event from another region's bucket: its data must be analysed where it lives."""


# The catalog's sort keys (`IGNORED#<key>`) are at most 1024 bytes of UTF-8 (DynamoDB).
MAX_KEY_BYTES = 1024 - len("IGNORED#")


class UnusableUpload(ValueError):
    """An upload the catalog cannot record at all (its key is too long): reject it once, never retry it."""


def check_key_fits(key: str) -> None:
    size = len(key.encode())
    if size > MAX_KEY_BYTES:
        raise UnusableUpload(
            f"key {key!r} is {size} bytes of UTF-8; the catalog records keys of at most {MAX_KEY_BYTES} bytes "
            "(DynamoDB sort keys are at most 1024 bytes, less the 'IGNORED#' prefix): rename the file"
        )


def _owner_folder(kind: FastqKey) -> str | None:
    """The parent folder of a FASTQ when it may be a v1 `<Sample_ID>/` folder (named otherwise than the file); only
    a sample sheet can tell it from a project folder."""
    parent = kind.run_key.relative_path.rpartition("/")[0]
    folder = parent.rpartition("/")[2]
    return folder if folder and folder != kind.name.sample_id else None


def _may_need_settling(record: SampleRecord) -> bool:
    """A sample that started and holds no conflict, with no file in a folder the sheet gave another sample, has
    nothing to settle (the common case after a marker or sheet); any other may."""
    if record.started and record.status is not SampleStatus.CONFLICT and not conflicts(record):
        return any(_folder_of_key(key) in record.folder_owners for key in sample_keys(record))
    return True


def _folder_of_key(key: str) -> str | None:
    kind = classify_key(key)
    return _owner_folder(kind) if isinstance(kind, FastqKey) else None


@dataclass
class IngestService:
    catalog: Catalog
    store: ObjectStore
    orchestrator: Orchestrator
    events: EventPublisher
    ingest_bucket: str
    results_bucket: str
    region: str
    dragen_version: str
    reference_uri: str
    modality: str = "germline-wgs"
    work: WorkQueue | None = None  # ingest's own queue; None: work a marker or sheet starts is done in-process
    _local: threading.local = field(default_factory=threading.local, init=False, repr=False, compare=False)

    def handle(self, upload: UploadedObject) -> Outcome:
        if upload.region != self.region:
            raise WrongRegion(f"{upload.bucket}/{upload.key} is in {upload.region}, this stack is {self.region}")
        if upload.bucket != self.ingest_bucket:
            return Outcome(Disposition.IGNORED, upload.key, detail=f"bucket {upload.bucket} is not the ingest bucket")
        check_key_fits(upload.key)  # before any catalog write
        kind = classify_key(upload.key)
        if isinstance(kind, IgnoredKey):
            return self._ignore(kind.run_id, upload.key, kind.reason)
        if isinstance(kind, CompletionMarkerKey):
            return self._close_run(kind.run_key.run_id, upload.key)
        if isinstance(kind, SampleSheetKey):
            return self._read_sample_sheet(kind.run_key.run_id, upload.key)
        return self._record_fastq(kind, upload)

    def _record_fastq(self, kind: FastqKey, upload: UploadedObject) -> Outcome:
        run_id, name = kind.run_key.run_id, kind.name
        fastq = FastqFile(
            key=upload.key,
            lane=name.lane or 1,  # lane-merged FASTQs are one lane for DRAGEN's fastq-list
            read=name.read_number,
            size=upload.size,
            etag=upload.etag,
            segment=name.segment,
        )
        folder = _owner_folder(kind)
        sample = self.catalog.record_fastq(run_id, name.sample_id, fastq, upload.ordering, folder)
        if folder is not None and folder in sample.folder_owners:
            # A v1 sheet said: files named after this Sample_Name in `<folder>/` are sample `folder`'s.
            sample = self.catalog.record_fastq(run_id, folder, fastq, upload.ordering)
        found = conflicts(sample)
        if found:
            return self._hold(sample, found, upload.key, provisional=True)
        missing = missing_reads(sample)
        if missing:  # decided by the sample's own record: one catalog call for most events
            return Outcome(
                Disposition.WAITING, upload.key, run_id, sample.sample_id, f"waiting for {', '.join(missing)}"
            )
        # All its reads are in: a sample the sheet declares with lanes may start; any other needs the closed run.
        run = RunState() if sample.declared_lanes else self.catalog.run_state(run_id)
        if not is_ready(sample, run):
            waiting = "waiting for the run's completion marker or sample sheet"
            return Outcome(Disposition.WAITING, upload.key, run_id, sample.sample_id, waiting)
        return self._advance(sample, upload.key)

    def _hold(self, sample: SampleRecord, found: list[Conflict], key: str, provisional: bool = False) -> Outcome:
        """Hold a sample in conflict (nothing starts for it) and announce each of its conflicts once. Two keys in
        `<folder>/` sub-folders named otherwise than the files may be two v1 samples that share a Sample_Name: until
        the sample sheet or the completion marker says, that is recorded, held and not yet announced."""
        detail = "; ".join(conflict.reason for conflict in found)
        if provisional and all(
            conflict.conflict_id.startswith("slot:") and all(_folder_of_key(k) for k in conflict.keys)
            for conflict in found
        ):
            run = self.catalog.run_state(sample.run_id)
            if not (run.closed or run.sheet_key):
                waiting = f"held until the sample sheet or completion marker says whose folders these are: {detail}"
                return Outcome(Disposition.WAITING, key, sample.run_id, sample.sample_id, waiting)
        if sample.status is not SampleStatus.CONFLICT and not sample.manifest_version:
            self.catalog.hold_in_conflict(sample.run_id, sample.sample_id)
        for conflict in found:
            if conflict.conflict_id in sample.conflicts_reported:
                continue
            if self.catalog.report_conflict(sample.run_id, sample.sample_id, conflict.conflict_id):
                self.events.publish(
                    SAMPLE_CONFLICT,
                    {
                        "run_id": sample.run_id,
                        "sample_id": sample.sample_id,
                        "slot": conflict.slot,
                        "keys": list(conflict.keys),
                        "reason": conflict.reason,
                        "started": sample.started,
                    },
                )
                logger.warning(
                    "sample conflict", run_id=sample.run_id, sample_id=sample.sample_id, reason=conflict.reason
                )
        return Outcome(Disposition.CONFLICT, key, sample.run_id, sample.sample_id, detail)

    def _read_sample_sheet(self, run_id: str, key: str) -> Outcome:
        try:
            try:
                text = self.store.get_text(self.ingest_bucket, key)
            except UnicodeDecodeError as error:
                raise not_utf8(error, key) from error
            sheet = parse_sample_sheet(text, name=key)
        except SampleSheetError as error:
            problem = str(error)
            self.catalog.record_sample_sheet(run_id, key, problem)
            detail = {"run_id": run_id, "key": key, "error": problem, "line": error.line, "section": error.section}
            self.events.publish(SAMPLE_SHEET_REJECTED, detail)
            logger.warning("sample sheet rejected", run_id=run_id, key=key, error=problem)
            return Outcome(Disposition.SHEET_REJECTED, key, run_id, detail=problem)
        # Declaring 10,000 samples is more than one invocation should do: chunks of DECLARE_CHUNK samples, each
        # its own message; the chunk that completes the set records the sheet and settles the run (seqlane.closing).
        declarations = [
            {
                "sample_id": declared.sample_id,
                "lanes": sorted(declared.lanes),
                "modality": declared.modality or sheet.default_modality,
                "file_name": declared.file_name,
            }
            for declared in sheet.samples
        ]
        chunks = [declarations[start : start + DECLARE_CHUNK] for start in range(0, len(declarations), DECLARE_CHUNK)]
        sheet_id = hashlib.sha256(text.encode()).hexdigest()[:16]  # this content of the sheet: its chunks' set
        base = {WORK: DECLARE_SAMPLES, "run_id": run_id, "key": key, "sheet_id": sheet_id, "chunks": len(chunks)}
        messages = [base | {"index": i, "paired": sheet.paired, "samples": chunk} for i, chunk in enumerate(chunks)]
        if not messages:  # a sheet that declares no sample: recorded at once
            self.catalog.record_sample_sheet(run_id, key, None)
        started = self._dispatch(messages)
        logger.info("sample sheet read", run_id=run_id, key=key, samples=len(sheet.samples), started=len(started))
        return Outcome(Disposition.SHEET_READ, key, run_id, started=tuple(started))

    def _close_run(self, run_id: str, marker_key: str) -> Outcome:
        # The marker is written after the run's files, but its event may be handled first: the run folder's
        # listing (once per run, strongly consistent) says which reads each sample must still wait for. It is
        # read a page at a time, each page in its own invocation (seqlane.closing).
        started = self._dispatch([{WORK: CLOSE_RUN, "run_id": run_id, "key": marker_key, "token": None}])
        logger.info("run closing", run_id=run_id, marker=marker_key, started=len(started))
        return Outcome(Disposition.RUN_CLOSED, marker_key, run_id, started=tuple(started))

    # ---- work split into bounded messages (seqlane.closing)
    def handle_work(self, message: dict[str, Any]) -> Outcome:
        """One message of the work a marker or a sheet started; what it started is in `started`."""
        kind = work_kind(message)
        started = self._dispatch([message]) if self.work is None else self._run_work(message)
        key = str(message.get("key", ""))
        return Outcome(Disposition.WORK_DONE, key, message["run_id"], detail=kind, started=tuple(started))

    def _dispatch(self, messages: list[dict[str, Any]]) -> list[str]:
        """Send work to ingest's own queue; without one (seqlane plan, tests) do it here, in the order it would
        be sent. Returns the executions started here."""
        if not messages:
            return []
        if self.work is not None:
            self.work.send(messages)
            return []
        pending = getattr(self._local, "pending", None)
        if pending is not None:  # inside the loop below: queued behind the message being done
            pending.extend(messages)
            return []
        self._local.pending = pending = deque(messages)
        started: list[str] = []
        try:
            while pending:
                started += self._run_work(pending.popleft())
        finally:
            self._local.pending = None
        return started

    def _run_work(self, message: dict[str, Any]) -> list[str]:
        kind = work_kind(message)
        run_id = message["run_id"]
        if kind == CLOSE_RUN:
            return self._close_run_page(run_id, message["key"], message.get("token"))
        if kind == DECLARE_SAMPLES:
            return self._declare_chunk(run_id, message["key"], message)
        if kind == ADVANCE_RUN:
            return self._advance_run_page(run_id, message["key"], message.get("start"), bool(message.get("marker")))
        return self._settle_sample(run_id, message["sample_id"], message["key"], bool(message.get("marker")))

    def _close_run_page(self, run_id: str, marker_key: str, token: str | None) -> list[str]:
        keys, next_token = self.store.list_page(self.ingest_bucket, f"{run_id}/", token, LIST_PAGE)
        owners: dict[str, frozenset[str]] = {}  # a Sample_Name's v1 `<Sample_ID>/` folders, read when needed
        listed: dict[str, dict[Slot, set[str]]] = defaultdict(lambda: defaultdict(set))
        for key in keys:
            kind = classify_key(key)
            if not isinstance(kind, FastqKey):
                continue
            name, folder = kind.name, _owner_folder(kind)
            sample_id = name.sample_id
            if folder is not None:
                if sample_id not in owners:
                    owners[sample_id] = self.catalog.sample(run_id, sample_id).folder_owners
                if folder in owners[sample_id]:
                    sample_id = folder
            listed[sample_id][(name.lane or 1, name.read_number, name.segment)].add(key)
        # Each listed key is a claim on its slot, so two keys for one slot are a conflict even when they are
        # listed on different pages, and before both their events are handled.
        for sample_id, slots in listed.items():
            self.catalog.record_listing(run_id, sample_id, {slot: frozenset(found) for slot, found in slots.items()})
        if next_token is not None:
            return self._dispatch([{WORK: CLOSE_RUN, "run_id": run_id, "key": marker_key, "token": next_token}])
        # Expectations first, completion second, then a fresh read of every sample: a file recorded concurrently
        # is seen either there or by its own handler (which then finds the run complete).
        self.catalog.mark_run_complete(run_id, marker_key)
        logger.info("run closed", run_id=run_id, marker=marker_key)
        return self._dispatch([{WORK: ADVANCE_RUN, "run_id": run_id, "key": marker_key, "start": None, "marker": True}])

    def _declare_chunk(self, run_id: str, key: str, message: dict[str, Any]) -> list[str]:
        owners: dict[str, set[str]] = defaultdict(set)
        samples = message.get("samples")
        if not isinstance(samples, list):
            raise UnusableWork(f"declare-samples for run {run_id} carries no samples")
        for declared in samples:
            self.catalog.declare_sample(
                run_id,
                declared["sample_id"],
                frozenset(declared["lanes"]),
                bool(message["paired"]),
                declared["modality"],
            )
            if declared["file_name"] != declared["sample_id"]:
                owners[declared["file_name"]].add(declared["sample_id"])
        for file_name, sample_ids in owners.items():  # before the files already recorded are moved
            self.catalog.add_folder_owners(run_id, file_name, sample_ids)
        settle = sorted({declared["sample_id"] for declared in samples} | set(owners))
        messages = [{WORK: ADVANCE_SAMPLE, "run_id": run_id, "key": key, "sample_id": sample} for sample in settle]
        done = self.catalog.sheet_chunk_done(run_id, message["sheet_id"], int(message["index"]))
        if done >= int(message["chunks"]):
            # Declarations first, the sheet second, then a fresh read of every sample: as for the marker.
            self.catalog.record_sample_sheet(run_id, key, None)
            messages.append({WORK: ADVANCE_RUN, "run_id": run_id, "key": key, "start": None, "marker": False})
        return self._dispatch(messages)

    def _advance_run_page(self, run_id: str, key: str, start: str | None, marker: bool) -> list[str]:
        """One page of the run's samples: each that may have something to do gets its own message."""
        records, next_start = self.catalog.samples_page(run_id, start, ADVANCE_PAGE)
        messages = [
            {WORK: ADVANCE_SAMPLE, "run_id": run_id, "key": key, "sample_id": record.sample_id, "marker": marker}
            for record in records
            if _may_need_settling(record)
        ]
        if next_start is not None:
            messages.append({WORK: ADVANCE_RUN, "run_id": run_id, "key": key, "start": next_start, "marker": marker})
        return self._dispatch(messages)

    def _settle_sample(self, run_id: str, sample_id: str, key: str, marker: bool) -> list[str]:
        """After a sheet or marker, one sample: files the sheet says are another sample's are moved there; a
        conflict is held and announced, a resolved one released; a ready sample is advanced."""
        record = self.catalog.sample(run_id, sample_id)
        moving: dict[str, set[str]] = defaultdict(set)
        for file_key in sample_keys(record):
            folder = _folder_of_key(file_key)
            if folder in record.folder_owners:
                moving[folder].add(file_key)
        for owner, keys in sorted(moving.items()):
            self.catalog.move_files(run_id, record.sample_id, owner, keys)
        if moving:
            record = self.catalog.sample(run_id, sample_id)
            owners = [{WORK: ADVANCE_SAMPLE, "run_id": run_id, "key": key, "sample_id": o} for o in sorted(moving)]
            started = self._dispatch(owners)
        else:
            started = []
        if not is_sample(record):
            return started
        found = conflicts(record)
        if found and marker:
            # A conflict holds until the lab deletes the extra files and sends the marker again: files of a sample
            # in conflict that the run folder no longer has are forgotten.
            gone = {k for k in sample_keys(record) if not self.store.exists(self.ingest_bucket, k)}
            if gone:
                record = self.catalog.drop_keys(run_id, record.sample_id, gone)
                found = conflicts(record)
        if found:
            self._hold(record, found, key)
            return started
        if record.status is SampleStatus.CONFLICT:  # its conflict is gone: the sample may start again
            self.catalog.release_conflict(run_id, record.sample_id)
            record = self.catalog.sample(run_id, record.sample_id)
        if is_ready(record, self.catalog.run_state(run_id)):
            outcome = self._advance(record, key)
            if outcome.disposition in (Disposition.STARTED, Disposition.REUPLOADED):
                started.extend(outcome.started)
        return started

    def _advance(self, sample: SampleRecord, key: str) -> Outcome:
        manifest = Manifest(
            run_id=sample.run_id,
            sample_id=sample.sample_id,
            ingest_bucket=self.ingest_bucket,
            results_bucket=self.results_bucket,
            route=Route(
                modality=sample.modality or self.modality,
                dragen_version=self.dragen_version,
                reference_uri=self.reference_uri,
                region=self.region,
            ),
            files=tuple(sample.files.values()),
        )
        if sample.started and sample.manifest_version == manifest.version:
            # A repeated event, sheet or marker for a sample already running this version: nothing to write.
            return Outcome(Disposition.ALREADY_STARTED, key, sample.run_id, sample.sample_id, manifest.version)
        claim = self.catalog.claim_manifest(
            sample.run_id, sample.sample_id, manifest.version, manifest.manifest_uri, manifest.execution_name
        )
        if claim.outcome is ClaimOutcome.CONFLICT:  # held since this invocation read the sample
            return Outcome(Disposition.CONFLICT, key, sample.run_id, sample.sample_id, "sample held in conflict")
        previous = claim.superseded_from  # set when this is the retry of a re-upload's start
        if claim.outcome is ClaimOutcome.OTHER_VERSION:
            # A file changed after the sample's manifest was written: the running analysis keeps its inputs, and
            # the new content becomes a new version, started and reported, never mixed into the old one.
            previous = claim.claimed_version
            assert previous is not None  # OTHER_VERSION names the version the sample holds
            superseded = self.catalog.supersede_manifest(
                sample.run_id,
                sample.sample_id,
                previous=previous,
                version=manifest.version,
                manifest_uri=manifest.manifest_uri,
                execution_name=manifest.execution_name,
            )
            if not superseded:  # another invocation moved the sample on meanwhile; its event decides
                return Outcome(Disposition.WAITING, key, sample.run_id, sample.sample_id, "sample version moved on")
        self.store.put_text(self.results_bucket, manifest.fastq_list_key, manifest.fastq_list_csv(), "text/csv")
        self.store.put_text(self.results_bucket, manifest.manifest_key, manifest.to_json(), "application/json")
        # Attempt 1 of a new version; the sample's own attempt of this version when seqlane.attempts moved it on
        # and crashed before the start (a redelivered event must start that attempt, not mark attempt 1 again).
        attempt = sample.attempt if sample.manifest_version == manifest.version else 1
        execution_name = manifest.execution_name_for(attempt)
        self.orchestrator.start_analysis(execution_name, manifest.execution_input(attempt))
        # Starting is idempotent (same name and input), so a redelivered event may start "again": the catalog
        # decides which invocation reports the start.
        first = self.catalog.mark_execution_started(sample.run_id, sample.sample_id, manifest.version)
        logger.info(
            "analysis started" if first else "analysis already started",
            run_id=manifest.run_id,
            sample_id=manifest.sample_id,
            version=manifest.version,
            execution_name=execution_name,
        )
        if previous is not None and first:
            self.events.publish(
                SAMPLE_REUPLOADED,
                {
                    "run_id": manifest.run_id,
                    "sample_id": manifest.sample_id,
                    "previous_version": previous,
                    "version": manifest.version,
                    "manifest_uri": manifest.manifest_uri,
                    "execution_name": execution_name,
                },
            )
        if not first:
            disposition = Disposition.ALREADY_STARTED
        else:
            disposition = Disposition.REUPLOADED if previous is not None else Disposition.STARTED
        return Outcome(disposition, key, sample.run_id, sample.sample_id, manifest.version, (execution_name,))

    def _ignore(self, run_id: str | None, key: str, reason: str) -> Outcome:
        if self.catalog.record_ignored(run_id or UNSORTED_RUN, key, reason):  # one event per file, not per delivery
            self.events.publish(FILE_IGNORED, {"run_id": run_id or UNSORTED_RUN, "key": key, "reason": reason})
        logger.info("file ignored", key=key, reason=reason)
        return Outcome(Disposition.IGNORED, key, run_id, detail=reason)
