"""Keys with URL-special characters through the local stack, as through AWS: upload -> S3 event -> ingest ->
catalog and manifest, with the keys byte for byte as uploaded (moto's EventBridge events re-encoded as AWS's)."""

import json

import pytest

from tests.integration.conftest import fastq

pytestmark = pytest.mark.integration
# A run folder with a space, "+", "%", "&", "=", "?", "#" and a non-ASCII letter; Illumina-named FASTQs in it.
RUN = "241121 run+1% é&x=y?#z"
SIDECAR = f"{RUN}/notes & QC=1?#2 é+%20.txt"  # a literal "+" and "%20" that must not be decoded into a space


def test_local_keys_with_special_characters_reach_manifest_and_catalog_unchanged(pipeline):
    # Given a run folder with URL-special characters: two FASTQs, a sidecar, the completion marker
    fastqs = [f"{RUN}/NA12878_S1_L001_R{read}_001.fastq.gz" for read in (1, 2)]
    for key in fastqs:
        pipeline.upload(key, fastq(key))
    pipeline.upload(SIDECAR, b"hand-written notes\n")
    pipeline.client.redeliver_upload_event(fastqs[0])  # at-least-once delivery, as the local client does it
    pipeline.client.redeliver_upload_event(SIDECAR)
    pipeline.upload(f"{RUN}/CopyComplete.txt", b"")

    # When every event has been handled
    pipeline.run_until_idle()

    # Then the sample ran once, under the run id exactly as uploaded
    sample = pipeline.sample(RUN, "NA12878")
    assert sample["status"] == "SUCCEEDED", sample
    assert [e["status"] for e in pipeline.executions()] == ["SUCCEEDED"]
    # And its manifest names the uploaded keys byte for byte
    manifest_key = sample["manifest_uri"].removeprefix(f"s3://{pipeline.results_bucket}/")
    manifest = json.loads(pipeline.s3.get_object(Bucket=pipeline.results_bucket, Key=manifest_key)["Body"].read())
    [row] = manifest["fastq_list"]
    prefix = f"s3://{pipeline.ingest_bucket}/"
    assert [row["Read1File"].removeprefix(prefix), row["Read2File"].removeprefix(prefix)] == fastqs
    assert manifest_key.startswith(f"manifests/{RUN}/NA12878/")
    # And the sidecar is recorded as ignored under its exact key, once, and nothing else was ignored
    items = pipeline.catalog_items(RUN)
    ignored = [item["key"] for item in items if item["sk"].startswith("IGNORED#")]
    assert ignored == [SIDECAR]
    assert [e["detail-type"] for e in pipeline.seqlane_events()].count("AnalysisSucceeded") == 1
