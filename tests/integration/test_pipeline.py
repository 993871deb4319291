"""One run from S3 upload to catalog rows and seqlane events, on the embedded AWS with the real template,
handlers, ASL and job runner (DRAGEN replaced by tests/fakes/dragen.py)."""

import json
import time

import pytest

from seqlane.local.rerun import failed_samples, rerun_failed
from tests.integration.conftest import fastq

pytestmark = pytest.mark.integration
RUN = "241121_A01234_0042_BHXXXXXXXX"


def upload_run(pipeline, samples=("NA12878", "NA24385"), lanes=(1, 2)):
    for sample_number, sample in enumerate(samples, start=1):
        for lane in lanes:
            for read in (1, 2):
                name = f"{sample}_S{sample_number}_L{lane:03d}_R{read}_001.fastq.gz"
                pipeline.upload(f"{RUN}/{name}", fastq(name))
    pipeline.upload(f"{RUN}/CopyComplete.txt", b"")


def test_pipeline_runs_uploaded_samples_to_catalog_and_events(pipeline):
    # Given a run of two samples with two lanes each, and its completion marker
    upload_run(pipeline)

    # When the pipeline has handled every event
    pipeline.run_until_idle()

    # Then each sample ran once, succeeded, and its outputs are cataloged with checksums
    executions = pipeline.executions()
    assert sorted(e["status"] for e in executions) == ["SUCCEEDED", "SUCCEEDED"]
    for sample in ("NA12878", "NA24385"):
        record = pipeline.sample(RUN, sample)
        assert record["status"] == "SUCCEEDED"
        outputs = [i for i in pipeline.catalog_items(RUN) if i["sk"].startswith(f"OUTPUT#{sample}#")]
        assert {o["path"] for o in outputs} >= {f"{sample}.bam", f"{sample}.hard-filtered.vcf.gz"}
        assert all(len(o["sha256"]) == 64 for o in outputs)
        # And the manifest's fastq-list has one row per lane, with S3 URIs
        manifest = json.loads(
            pipeline.s3.get_object(Bucket=pipeline.results_bucket, Key=record["manifest_uri"].split("/", 3)[3])[
                "Body"
            ].read()
        )
        assert [row["Lane"] for row in manifest["fastq_list"]] == ["1", "2"]
        assert manifest["fastq_list"][0]["Read1File"].startswith(f"s3://{pipeline.ingest_bucket}/{RUN}/")

    # And one AnalysisSucceeded event per sample was published
    events = pipeline.seqlane_events()
    assert sorted((e["detail-type"], e["detail"]["sample_id"]) for e in events) == [
        ("AnalysisSucceeded", "NA12878"),
        ("AnalysisSucceeded", "NA24385"),
    ]


def test_pipeline_records_failed_job_and_publishes_analysis_failed(pipeline, fake_dragen_exit):
    # Given DRAGEN exits non-zero for every job
    fake_dragen_exit(7)

    # When a one-sample run is uploaded and handled
    upload_run(pipeline, samples=("NA12878",), lanes=(1,))
    pipeline.run_until_idle()

    # Then the execution failed, the sample is FAILED with the runner's own reason (not Batch's "Essential container
    # in task exited"), and AnalysisFailed was published once, though both the job's and the execution's
    # status changes reached the catalog
    assert [e["status"] for e in pipeline.executions()] == ["FAILED"]
    record = pipeline.sample(RUN, "NA12878")
    assert record["status"] == "FAILED"
    assert record["exit_code"] == 7
    assert record["failure_reason"].startswith("engine dragen exited with code 7")
    events = pipeline.seqlane_events()
    assert [e["detail-type"] for e in events] == ["AnalysisFailed"]
    assert events[0]["detail"]["cause"] == record["failure_reason"]


def test_pipeline_starts_one_execution_when_uploads_repeat_and_reorder(pipeline):
    # Given every FASTQ uploaded twice in reverse order (as a retrying uploader would), then the marker twice
    names = [f"NA12878_S1_L00{lane}_R{read}_001.fastq.gz" for lane in (1, 2) for read in (1, 2)]
    for name in reversed(names * 2):
        pipeline.upload(f"{RUN}/{name}", fastq(name))
    pipeline.upload(f"{RUN}/CopyComplete.txt", b"")
    pipeline.upload(f"{RUN}/CopyComplete.txt", b"")

    # When every event has been handled
    pipeline.run_until_idle()

    # Then exactly one execution ran, and one AnalysisSucceeded was published
    assert [e["status"] for e in pipeline.executions()] == ["SUCCEEDED"]
    assert [e["detail-type"] for e in pipeline.seqlane_events()] == ["AnalysisSucceeded"]


def test_pipeline_stopped_execution_ends_aborted_not_stuck(pipeline, monkeypatch):
    # Given a job that runs for a while
    monkeypatch.setenv("FAKE_DRAGEN_SECONDS", "4")
    upload_run(pipeline, samples=("NA12878",), lanes=(1,))
    deadline = time.monotonic() + 60
    while not pipeline.executions() and time.monotonic() < deadline:
        time.sleep(0.2)
    (execution,) = pipeline.executions()

    # When an operator stops its execution
    pipeline.client.sfn.stop_execution(executionArn=execution["executionArn"], cause="operator stop")
    pipeline.run_until_idle()

    # Then the sample is ABORTED (Step Functions' own status change reached the catalog), announced once, and the
    # job that still finished afterwards changed nothing
    record = pipeline.sample(RUN, "NA12878")
    assert record["status"] == "ABORTED"
    assert [(e["detail-type"], e["detail"]["status"]) for e in pipeline.seqlane_events()] == [
        ("AnalysisFailed", "ABORTED")
    ]


def test_pipeline_failed_sample_runs_again_as_attempt_two(pipeline, fake_dragen_exit):
    # Given a sample whose analysis failed
    fake_dragen_exit(7)
    upload_run(pipeline, samples=("NA12878",), lanes=(1,))
    pipeline.run_until_idle()
    assert pipeline.sample(RUN, "NA12878")["status"] == "FAILED"

    # When the cause is fixed and the sample is run again (as `seqlane local run` does on the same folder)
    fake_dragen_exit(0)
    before = failed_samples(pipeline.catalog_items(RUN))
    (outcome,) = rerun_failed(pipeline.client, RUN, before)
    pipeline.run_until_idle()

    # Then attempt 2 of the same version ran under its own execution and SUCCEEDED, attempt 1 kept as history
    record = pipeline.sample(RUN, "NA12878")
    assert (record["status"], record["attempt"], outcome.previous_status) == ("SUCCEEDED", 2, "FAILED")
    assert sorted(e["status"] for e in pipeline.executions()) == ["FAILED", "SUCCEEDED"]
    assert [e["detail-type"] for e in pipeline.seqlane_events()] == ["AnalysisFailed", "AnalysisSucceeded"]
    assert "/1/" in record["result_uri"] and record["previous_attempts"][0]["attempt"] == 1
