"""How long `seqlane demo` takes, and how much of it is the engine versus orchestration.

1. The command as a user runs it (`python -m seqlane.cli demo --json`, a fresh process): wall time, end to end.
2. The same run in this process with one Batch worker, so jobs run one after another and the time that is not engine
   time is orchestration: per sample, (run wall time - sum of engine times) / samples. Engine time per sample is the
   runner's measurement of the engine command (`engine_seconds` in seqlane-result.json).

Targets (issue 3): demo under 60 s on a 2-core machine; orchestration overhead under 2 s per sample.
Last line: one JSON object with the figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))

REGION = "eu-west-2"


def cli_wall_seconds(workdir: Path) -> tuple[float, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SEQLANE_", "DRAGEN_"))}
    env["SEQLANE_LOCAL_STATE"] = str(workdir / "no-background-stack.json")
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "seqlane.cli", "demo", "--json", "--workdir", str(workdir / "cli")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"seqlane demo failed ({result.returncode}): {result.stderr}")
    return wall, json.loads(result.stdout)


def serial_breakdown(workdir: Path) -> dict:
    from seqlane.demo.dataset import generate
    from seqlane.local.client import LocalClient
    from seqlane.local.host import LocalHost
    from seqlane.local.run import RunRequest, execute

    dataset = generate(workdir / "data")
    started = time.perf_counter()
    with LocalHost(region=REGION, scratch=workdir / "scratch", workers=1) as host:
        stack_start = time.perf_counter() - started
        client = LocalClient(host.endpoint, REGION, host.jobs_dir)
        request = RunRequest(run_dir=dataset.run_dir, reference=dataset.reference_fasta, truth_vcf=dataset.truth_vcf)
        run_started = time.perf_counter()
        summary = execute(client, request)
        run_wall = time.perf_counter() - run_started
        engine = []
        for item in client.catalog_items(dataset.run_id):
            if item["sk"].startswith("SAMPLE#") and item.get("result_uri"):
                bucket, _, key = item["result_uri"].removeprefix("s3://").partition("/")
                result = json.loads(client.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                engine.append(result["engine_seconds"])
    if [s["status"] for s in summary["samples"]] != ["SUCCEEDED"] * len(dataset.sample_ids):
        raise SystemExit(f"demo samples did not all succeed: {summary['samples']}")
    samples = len(engine)
    return {
        "stack_start_seconds": round(stack_start, 2),
        "serial_run_wall_seconds": round(run_wall, 2),
        "engine_seconds_total": round(sum(engine), 2),
        "engine_share": round(sum(engine) / run_wall, 3),
        "orchestration_overhead_per_sample_seconds": round((run_wall - sum(engine)) / samples, 2),
        "samples": samples,
        "recall": summary["concordance"]["recall"],
        "precision": summary["concordance"]["precision"],
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="seqlane-bench-demo-") as scratch:
        workdir = Path(scratch)
        cli_wall, cli_summary = cli_wall_seconds(workdir)
        print(f"seqlane demo (fresh process, default workers): {cli_wall:.1f} s", file=sys.stderr)
        figures = {"cli_demo_wall_seconds": round(cli_wall, 2), "cpu_count": os.cpu_count()}
        figures["cli_all_succeeded"] = all(s["status"] == "SUCCEEDED" for s in cli_summary["samples"])
        with contextlib.redirect_stdout(sys.stderr):  # handler logs; stdout ends with the figures
            figures.update(serial_breakdown(workdir))
    figures["target_demo_wall_seconds"] = 60
    figures["target_overhead_per_sample_seconds"] = 2
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
