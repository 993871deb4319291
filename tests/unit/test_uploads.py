"""uploads_from_message: S3 uploads from EventBridge events and classic S3 notifications, keys decoded exactly once."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seqlane.uploads import UnsupportedEvent, UploadedObject, event_key, uploads_from_message

EVENTS = Path(__file__).resolve().parents[2] / "events"
# Real third-party payloads (see ../shared/data/real/SOURCES.md); tests that read them skip where they are absent.
REAL_EVENTS = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "events"
real_payloads = pytest.mark.skipif(not REAL_EVENTS.is_dir(), reason="../shared/data/real/events is not here")
# Keys as a lab writes them: spaces, "+", a literal "%20", "#", "&", "=", "?", "@", non-ASCII.
SPECIAL_KEYS = [
    "241121 run+1%/NA12878_S1_L001_R1_001.fastq.gz",
    "241121 run+1%/notes & QC=1?#2 é.txt",
    "run/Sample A+B_S1_L001_R1_001.fastq.gz",
    "run/literally%20encoded+plus%2B.txt",
    "run/a@b/ünïcødé 雪.csv",
]
RUN = "241121_A01234_0042_BHXXXXXXXX"
BUCKET = "seqlane-ingest-123456789012-eu-west-2"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


@pytest.fixture
def eventbridge() -> dict:
    return load("s3-object-created-eventbridge.json")


@pytest.fixture
def notification() -> dict:
    return load("s3-object-created-notification.json")


def test_uploads_from_eventbridge_object_created(eventbridge):
    # Given the sample EventBridge event, a multipart upload / When read
    [upload] = uploads_from_message(eventbridge)
    # Then every field is taken from the event, and the multipart etag is kept whole
    detail = eventbridge["detail"]
    assert detail["reason"] == "CompleteMultipartUpload"
    assert upload == UploadedObject(
        bucket=BUCKET,
        key=f"{RUN}/NA12878_S1_L001_R1_001.fastq.gz",
        size=detail["object"]["size"],
        etag=detail["object"]["etag"],
        sequencer=detail["object"]["sequencer"],
        region="eu-west-2",
    )
    assert upload.etag.endswith("-128")


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("Project+A%2FNA12878_S1_L001_R1_001.fastq.gz", "Project A/NA12878_S1_L001_R1_001.fastq.gz"),
        ("NA%2B12878_S1_L001_R1_001.fastq.gz", "NA+12878_S1_L001_R1_001.fastq.gz"),
    ],
)
def test_uploads_from_eventbridge_decodes_key(eventbridge, encoded, decoded):
    eventbridge["detail"]["object"]["key"] = f"{RUN}/{encoded}"
    assert uploads_from_message(eventbridge)[0].key == f"{RUN}/{decoded}"


def test_uploads_from_eventbridge_keeps_multipart_etag(eventbridge):
    eventbridge["detail"]["object"]["etag"] = "abc-3"
    assert uploads_from_message(eventbridge)[0].etag == "abc-3"


def test_uploads_from_notification_record(notification):
    # Given the sample S3 notification with a URL-encoded key
    notification["Records"][0]["s3"]["object"]["key"] = f"{RUN}/Tumour+A%2C1_S2_L001_R2_001.fastq.gz"
    # When read / Then the key is decoded and the other fields come from the record
    [upload] = uploads_from_message(notification)
    s3 = notification["Records"][0]["s3"]
    assert upload.key == f"{RUN}/Tumour A,1_S2_L001_R2_001.fastq.gz"
    assert (upload.bucket, upload.region) == (BUCKET, "eu-west-2")
    assert (upload.size, upload.etag, upload.sequencer) == (
        s3["object"]["size"],
        s3["object"]["eTag"],
        s3["object"]["sequencer"],
    )


def test_uploads_from_notification_with_two_records(notification):
    # Given a notification carrying two records
    second = copy.deepcopy(notification["Records"][0])
    second["s3"]["object"]["key"] = f"{RUN}/NA12878_S1_L002_R2_001.fastq.gz"
    notification["Records"].append(second)
    # Then both uploads are returned, in order
    assert [u.key for u in uploads_from_message(notification)] == [
        f"{RUN}/NA12878_S1_L001_R2_001.fastq.gz",
        f"{RUN}/NA12878_S1_L002_R2_001.fastq.gz",
    ]


def test_uploads_from_s3_test_event_is_empty():
    test_event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2024-11-21T14:00:00.000Z",
        "Bucket": BUCKET,
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }
    assert uploads_from_message(test_event) == []


def test_uploads_from_object_deleted_is_unsupported(eventbridge):
    eventbridge["detail-type"] = "Object Deleted"
    eventbridge["detail"]["reason"] = "DeleteObject"
    with pytest.raises(UnsupportedEvent, match=r"aws\.s3/'Object Deleted' is not an S3 upload"):
        uploads_from_message(eventbridge)


def test_uploads_from_unrelated_json_is_unsupported():
    with pytest.raises(UnsupportedEvent, match=r"not an S3 event: keys \['hello'\]"):
        uploads_from_message({"hello": "world"})


def test_ordering_left_pads_sequencers():
    # Given sequencers of different lengths, "9" before "10A" in hex but not as plain strings
    older = UploadedObject("b", "k", 1, "e", sequencer="9", region="eu-west-2")
    newer = UploadedObject("b", "k", 1, "e", sequencer="10A", region="eu-west-2")
    assert older.sequencer > newer.sequencer
    # Then the padded orderings compare in event order and have equal width
    assert older.ordering < newer.ordering
    assert len(older.ordering) == len(newer.ordering)


def test_uploads_from_eventbridge_reads_motos_etag_spelling(eventbridge):
    # Given the same upload as AWS spells its ETag ("etag") and as moto's emulation does ("eTag")
    [as_aws_sends_it] = uploads_from_message(copy.deepcopy(eventbridge))
    eventbridge["detail"]["object"]["eTag"] = eventbridge["detail"]["object"].pop("etag")
    # When the moto-shaped one is parsed
    [as_moto_sends_it] = uploads_from_message(eventbridge)
    # Then both give the same, non-empty ETag, so a redelivered AWS-shaped event matches moto's own
    assert as_moto_sends_it.etag == as_aws_sends_it.etag != ""


def _real(name: str) -> dict:
    return json.loads((REAL_EVENTS / name).read_text(encoding="utf-8-sig"))


@real_payloads
@pytest.mark.parametrize(
    ("payload", "record", "key"),
    [
        ("powertools-python/s3EventDecodedKey.json", 0, "Happy Face.jpg"),  # "Happy%20Face.jpg"
        ("aws-lambda-go/s3-event.json", 0, "Happy Face.jpg"),  # "Happy%20Face.jpg"
        ("aws-lambda-dotnet/s3-event.json", 1, "New File.jpg"),  # "New+File.jpg": "+" is a space
        ("aws-lambda-dotnet/s3-event.json", 0, "HappyFace.jpg"),
    ],
)
def test_uploads_from_real_notifications_decode_the_key_once(payload, record, key):
    # Given a real classic S3 notification whose key is URL-encoded
    message = _real(payload)
    # When read / Then the key is the one uploaded
    assert uploads_from_message(message)[record].key == key


@real_payloads
def test_uploads_from_a_notification_recorded_against_aws_decodes_at_sign():
    # Given the message AWS sent for key "a@b" (LocalStack's snapshot, recorded against AWS: key "a%40b")
    snapshot = _real("localstack/test_s3_notifications_sqs.snapshot.json")
    test = "tests/aws/services/s3/test_s3_notifications_sqs.py::TestS3NotificationsToSQS::test_key_encoding"
    [record] = snapshot[test]["recorded-content"]["receive_messages"]["messages"]
    assert record["s3"]["object"]["key"] == "a%40b"
    # When read / Then the key is "a@b"
    assert uploads_from_message({"Records": [record]})[0].key == "a@b"


@real_payloads
@pytest.mark.parametrize(
    "payload",
    [
        "powertools-python/s3EventBridgeNotificationObjectCreatedEvent.json",
        "aws-lambda-dotnet/cloudwatchevents-s3objectcreated.json",
    ],
)
@pytest.mark.parametrize("key", SPECIAL_KEYS)
def test_uploads_from_real_eventbridge_events_return_the_uploaded_key(payload, key):
    # Given a real EventBridge "Object Created" event carrying a key with special characters, encoded as S3 does
    message = _real(payload)
    message["detail"]["object"]["key"] = event_key(key)
    # When read / Then the key is exactly the uploaded one (decoded once: a literal "%20" or "+" survives)
    assert uploads_from_message(message)[0].key == key


@real_payloads
@pytest.mark.parametrize("key", SPECIAL_KEYS)
def test_uploads_from_real_notification_return_the_uploaded_key(key):
    # Given a real classic notification carrying a key with special characters, encoded as S3 does
    message = _real("powertools-python/s3Event.json")
    message["Records"][0]["s3"]["object"]["key"] = event_key(key)
    # When read / Then the key is exactly the uploaded one
    assert uploads_from_message(message)[0].key == key


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("run/a%2520b", "run/a%20b"),  # a key holding "%20" is sent as "%2520": one decoding gives "%20" back
        ("run/a%2Bb+c", "run/a+b c"),
        ("run/caf%C3%A9", "run/café"),
        ("run%2Fslash", "run/slash"),  # moto's classic form encodes "/"
    ],
)
def test_uploads_decode_each_form_exactly_once(eventbridge, notification, encoded, decoded):
    # Given the same encoded key in both forms
    eventbridge["detail"]["object"]["key"] = encoded
    notification["Records"][0]["s3"]["object"]["key"] = encoded
    # When read / Then both give the same key, decoded once
    assert uploads_from_message(eventbridge)[0].key == decoded
    assert uploads_from_message(notification)[0].key == decoded


def test_uploads_refuse_a_key_that_is_not_utf8(eventbridge):
    # Given a key whose percent-escapes are not UTF-8
    eventbridge["detail"]["object"]["key"] = "run/%FF.txt"
    # When / Then the event is refused, rather than recorded under a replaced key
    with pytest.raises(UnsupportedEvent, match="not URL-encoded UTF-8"):
        uploads_from_message(eventbridge)


@given(key=st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=60))
def test_event_key_round_trips_any_key_in_both_forms(key):
    # Given any key (any Unicode text but lone surrogates, which S3 cannot hold), encoded as S3 does
    eventbridge = load("s3-object-created-eventbridge.json")
    notification = load("s3-object-created-notification.json")
    eventbridge["detail"]["object"]["key"] = event_key(key)
    notification["Records"][0]["s3"]["object"]["key"] = event_key(key)
    # When read / Then each form gives the key back unchanged
    assert uploads_from_message(eventbridge)[0].key == key
    assert uploads_from_message(notification)[0].key == key
