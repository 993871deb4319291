"""Step Functions cost per sample on the happy path, from real execution histories on the embedded AWS.

Counts the billable steps inside the state machine (state transitions, plus Lambda invocations: none today) for
jobs that take 0 s and 3 s, to show the count does not grow with the job's duration (no polling loop).
Run: .venv/bin/python benchmarks/transitions.py
"""

import gzip
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers"), str(ROOT)]
PRICE_PER_TRANSITION = 0.025 / 1000  # USD, Standard workflows
REGION = "eu-west-2"
SAMPLES = 4


def fake_dragen(directory: Path) -> Path:
    path = directory / "dragen"
    path.write_text(f'#!/bin/sh\nexec {sys.executable} {ROOT / "tests" / "fakes" / "dragen.py"} "$@"\n')
    path.chmod(0o755)
    return path


def billable_steps(history: list[dict]) -> dict[str, int]:
    entered = sum(1 for e in history if e["type"].endswith("StateEntered"))
    lambdas = sum(1 for e in history if e["type"] == "LambdaFunctionScheduled")
    return {"state_transitions": entered, "lambda_invocations": lambdas, "billable_steps": entered + lambdas}


def run(job_seconds: float) -> list[dict[str, int]]:
    from seqlane.local.pipeline import LocalPipeline

    os.environ["FAKE_DRAGEN_SECONDS"] = str(job_seconds)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        with LocalPipeline(
            ROOT / "template.yaml",
            REGION,
            scratch=tmp_path / "scratch",
            job_environment={"DRAGEN_BIN": str(fake_dragen(tmp_path))},
            reference_files={"hash_table.cfg": b"reference"},
        ) as pipeline:
            for number in range(1, SAMPLES + 1):
                for read in (1, 2):
                    name = f"S{number}_S{number}_L001_R{read}_001.fastq.gz"
                    pipeline.upload(f"RUN1/{name}", gzip.compress(b"@r\nACGT\n+\nFFFF\n", mtime=0))
            pipeline.upload("RUN1/CopyComplete.txt", b"")
            pipeline.run_until_idle(timeout=300)
            steps = []
            for execution in pipeline.executions():
                assert execution["status"] == "SUCCEEDED", execution
                history = pipeline.client.sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
                steps.append(billable_steps(history))
            return steps


def main() -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    os.environ["AWS_DEFAULT_REGION"] = REGION
    import logging

    logging.disable(logging.WARNING)
    quick, slow = run(0), run(3)
    per_sample = statistics.median(s["billable_steps"] for s in quick)
    figures = {
        "samples": SAMPLES,
        "state_transitions_per_sample": statistics.median(s["state_transitions"] for s in quick),
        "lambda_invocations_per_sample": statistics.median(s["lambda_invocations"] for s in quick),
        "billable_steps_per_sample": per_sample,
        "billable_steps_per_sample_3s_job": statistics.median(s["billable_steps"] for s in slow),
        "orchestration_cost_usd_per_sample": per_sample * PRICE_PER_TRANSITION,
        "orchestration_cost_usd_per_1000_samples": round(per_sample * PRICE_PER_TRANSITION * 1000, 4),
        "target_max_billable_steps": 6,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
