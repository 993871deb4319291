"""S3 "Object Created" events, in either form AWS delivers them, as one small value type.

- EventBridge form (S3 -> EventBridge -> SQS): detail-type "Object Created".
- Classic S3 notification form (S3 -> SQS or S3 -> Lambda): {"Records": [{"eventSource": "aws:s3", ...}]}.

S3 writes the object key URL-encoded in both forms, as a form value (application/x-www-form-urlencoded: "+" for a
space, "%2B" for "+", "%40" for "@", UTF-8 bytes of "é" as "%C3%A9"; "/" is left alone). Each key is decoded here
exactly once, from the raw event (not through a Powertools property, whose decoding differs between the two forms),
so a key that itself holds "%20" or "+" comes out as it was uploaded. `event_key` is the inverse, for events this
project builds itself (the local stack's S3 emulation and redeliveries).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote_plus, unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, S3EventBridgeNotificationEvent

_SEQUENCER_WIDTH = 32  # sequencers order events per key once left-padded to equal width


def event_key(key: str) -> str:
    """An object key as S3 writes it into an event (either form)."""
    return quote_plus(key, safe="/")


class UnsupportedEvent(ValueError):
    """Not an S3 object-created event; the message says what it was."""


def decoded_key(encoded: str) -> str:
    """The object key of an event's (URL-encoded) key field; S3 keys are UTF-8, so anything else is refused."""
    try:
        return unquote_plus(encoded, errors="strict")
    except UnicodeDecodeError as err:
        raise UnsupportedEvent(f"object key {encoded[:200]!r} is not URL-encoded UTF-8 ({err.reason})") from None


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
        key=decoded_key(obj["key"]),
        size=int(obj["size"]),
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
        key=decoded_key(obj["key"]),
        size=int(obj.size or 0),
        etag=obj.etag.strip('"'),
        sequencer=obj.get("sequencer") or "0",
        region=record.aws_region,
        version_id=obj.get("versionId"),
    )
