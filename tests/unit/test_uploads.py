"""uploads_from_message: S3 uploads from EventBridge events and classic S3 notifications, keys decoded."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from seqlane.uploads import UnsupportedEvent, UploadedObject, uploads_from_message

EVENTS = Path(__file__).resolve().parents[2] / "events"
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
