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

from collections import defaultdict
from dataclasses import asdict, dataclass
from enum import StrEnum

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
        owners: dict[str, set[str]] = defaultdict(set)
        for declared in sheet.samples:
            self.catalog.declare_sample(
                run_id,
                declared.sample_id,
                declared.lanes,
                sheet.paired,
                declared.modality or sheet.default_modality,
            )
            if declared.file_name != declared.sample_id:
                owners[declared.file_name].add(declared.sample_id)
        for file_name, sample_ids in owners.items():  # before the files already recorded are moved
            self.catalog.add_folder_owners(run_id, file_name, sample_ids)
        # Declarations first, the sheet second, then a fresh read: as for the completion marker.
        self.catalog.record_sample_sheet(run_id, key, None)
        if owners:
            self._reattribute(run_id)
        started = self._settle_run(run_id, key)
        logger.info("sample sheet read", run_id=run_id, key=key, samples=len(sheet.samples), started=len(started))
        return Outcome(Disposition.SHEET_READ, key, run_id, started=tuple(started))

    def _reattribute(self, run_id: str) -> None:
        """Files recorded under a Sample_Name before the sheet said that, in `<Sample_ID>/`, they are that sample's."""
        for record in self.catalog.samples_of_run(run_id):
            moving: dict[str, set[str]] = defaultdict(set)
            for key in sample_keys(record):
                folder = _folder_of_key(key)
                if folder in record.folder_owners:
                    moving[folder].add(key)
            for owner, keys in sorted(moving.items()):
                self.catalog.move_files(run_id, record.sample_id, owner, keys)

    def _close_run(self, run_id: str, marker_key: str) -> Outcome:
        # The marker is written after the run's files, but its event may be handled first: the run folder's
        # listing (once per run, strongly consistent) says which reads each sample must still wait for.
        records = {record.sample_id: record for record in self.catalog.samples_of_run(run_id)}
        listing = self.store.list_keys(self.ingest_bucket, f"{run_id}/")
        expected: dict[str, set[Slot]] = defaultdict(set)
        listed: dict[tuple[str, Slot], set[str]] = defaultdict(set)
        for key in listing:
            kind = classify_key(key)
            if isinstance(kind, FastqKey):
                name, folder = kind.name, _owner_folder(kind)
                owners = records[name.sample_id].folder_owners if name.sample_id in records else frozenset()
                sample_id = folder if folder in owners else name.sample_id
                slot = (name.lane or 1, name.read_number, name.segment)
                expected[sample_id].add(slot)
                listed[(sample_id, slot)].add(key)
        # Two keys listed for one slot: the sample is in conflict even before both their events are handled.
        for (sample_id, slot), keys in listed.items():
            if len(keys) > 1:
                self.catalog.record_listed_claims(run_id, sample_id, slot, keys)
        # A conflict holds until the lab deletes the extra files and sends the marker again: files of a sample in
        # conflict that the listing no longer has are forgotten.
        present = set(listing)
        for record in records.values():
            gone = sample_keys(record) - present
            if gone and conflicts(record):
                self.catalog.drop_keys(run_id, record.sample_id, gone)
        for sample_id, slots in expected.items():
            self.catalog.expect_reads(run_id, sample_id, slots)
        # Expectations first, completion second, then a fresh read: a file recorded concurrently is seen either
        # here or by its own handler (which then finds the run complete).
        self.catalog.mark_run_complete(run_id, marker_key)
        started = self._settle_run(run_id, marker_key)
        logger.info("run closed", run_id=run_id, marker=marker_key, started=len(started))
        return Outcome(Disposition.RUN_CLOSED, marker_key, run_id, started=tuple(started))

    def _settle_run(self, run_id: str, key: str) -> list[str]:
        """After a sheet or marker: each sample in conflict is held and announced, each other ready one advanced."""
        run = self.catalog.run_state(run_id)
        started = []
        for record in self.catalog.samples_of_run(run_id):
            if not is_sample(record):
                continue
            sample, found = record, conflicts(record)
            if found:
                self._hold(sample, found, key)
                continue
            if sample.status is SampleStatus.CONFLICT:  # its conflict is gone: the sample may start again
                self.catalog.release_conflict(run_id, sample.sample_id)
                sample = self.catalog.sample(run_id, sample.sample_id)
            if is_ready(sample, run):
                outcome = self._advance(sample, key)
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
        self.orchestrator.start_analysis(
            manifest.execution_name,
            {
                "run_id": manifest.run_id,
                "sample_id": manifest.sample_id,
                "version": manifest.version,
                "manifest_uri": manifest.manifest_uri,
                "route": asdict(manifest.route),
                "attempt": 1,  # a failed analysis run again is started by seqlane.attempts with its number
            },
        )
        # Starting is idempotent (same name and input), so a redelivered event may start "again": the catalog
        # decides which invocation reports the start.
        first = self.catalog.mark_execution_started(sample.run_id, sample.sample_id, manifest.version)
        logger.info(
            "analysis started" if first else "analysis already started",
            run_id=manifest.run_id,
            sample_id=manifest.sample_id,
            version=manifest.version,
            execution_name=manifest.execution_name,
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
                    "execution_name": manifest.execution_name,
                },
            )
        if not first:
            disposition = Disposition.ALREADY_STARTED
        else:
            disposition = Disposition.REUPLOADED if previous is not None else Disposition.STARTED
        return Outcome(disposition, key, sample.run_id, sample.sample_id, manifest.version, (manifest.execution_name,))

    def _ignore(self, run_id: str | None, key: str, reason: str) -> Outcome:
        if self.catalog.record_ignored(run_id or UNSORTED_RUN, key, reason):  # one event per file, not per delivery
            self.events.publish(FILE_IGNORED, {"run_id": run_id or UNSORTED_RUN, "key": key, "reason": reason})
        logger.info("file ignored", key=key, reason=reason)
        return Outcome(Disposition.IGNORED, key, run_id, detail=reason)
