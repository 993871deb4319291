"""S3 "Object Created" events, in either form AWS delivers them, as one small value type.

- EventBridge form (S3 -> EventBridge -> SQS): detail-type "Object Created".
- Classic S3 notification form (S3 -> SQS or S3 -> Lambda): {"Records": [{"eventSource": "aws:s3", ...}]}.
Keys are URL-encoded in both forms ("+" for space) and are decoded here.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, S3EventBridgeNotificationEvent

_SEQUENCER_WIDTH = 32  # sequencers order events per key once left-padded to equal width


class UnsupportedEvent(ValueError):
    """Not an S3 object-created event; the message says what it was."""


@dataclass(frozen=True, slots=True)
class UploadedObject:
    bucket: str
    key: str
    size: int
    etag: str
    sequencer: str
    region: str
    version_id: str | None = None

    @property
    def ordering(self) -> str:
        return self.sequencer.rjust(_SEQUENCER_WIDTH, "0")


def uploads_from_message(message: dict) -> list[UploadedObject]:
    """All uploads in one queued message; an S3 test event holds none."""
    if message.get("Event") == "s3:TestEvent":
        return []
    if message.get("detail-type") is not None:
        return [_from_eventbridge(message)]
    records = message.get("Records")
    if isinstance(records, list):
        return [_from_notification_record(record) for record in S3Event(message).records]
    raise UnsupportedEvent(f"not an S3 event: keys {sorted(message)[:6]}")


def _from_eventbridge(message: dict) -> UploadedObject:
    event = S3EventBridgeNotificationEvent(message)
    if event.detail_type != "Object Created" or event.source != "aws.s3":
        raise UnsupportedEvent(f"EventBridge event {event.source}/{event.detail_type!r} is not an S3 upload")
    obj = event.detail.object
    return UploadedObject(
        bucket=event.detail.bucket.name,
        key=obj.key,  # Powertools decodes the EventBridge key
        size=int(obj.size),
        etag=(obj.etag or obj.get("eTag") or "").strip('"'),  # AWS writes "etag"; moto's emulation "eTag"
        sequencer=obj.sequencer,
        region=event.region,
        version_id=obj.get("version-id"),
    )


def _from_notification_record(record) -> UploadedObject:
    if record.event_source != "aws:s3" or not record.event_name.startswith("ObjectCreated:"):
        raise UnsupportedEvent(f"S3 notification {record.event_source}/{record.event_name} is not an upload")
    obj = record.s3.get_object
    return UploadedObject(
        bucket=record.s3.bucket.name,
        key=unquote_plus(obj.key),  # the classic form is not decoded by Powertools
        size=int(obj.size or 0),
        etag=obj.etag.strip('"'),
        sequencer=obj.get("sequencer") or "0",
        region=record.aws_region,
        version_id=obj.get("versionId"),
    )
