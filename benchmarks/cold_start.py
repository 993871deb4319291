"""Cold start cost of each Lambda handler module: its import time divided by `import boto3`'s, each measured in
fresh interpreters in the same run (median of several). Heavy imports are deferred to first use.
Run: .venv/bin/python benchmarks/cold_start.py
"""

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 9
TARGET_RATIO = 1.5

_PROBE = """
import importlib.util, sys, time
started = time.perf_counter()
{body}
print(time.perf_counter() - started)
"""


def seconds(body: str, path: list[str]) -> float:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "PYTHONDONTWRITEBYTECODE": "0"}
    samples = []
    for _ in range(REPEATS):
        output = subprocess.run(
            [sys.executable, "-c", _PROBE.format(body=body)],
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(float(output.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def handler_body(app: Path) -> str:
    return (
        f"spec = importlib.util.spec_from_file_location('handler', {str(app)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)"
    )


def main() -> None:
    layers = str(ROOT / "layers")
    boto3_seconds = seconds("import boto3", [layers])
    figures = {"boto3_import_ms": round(boto3_seconds * 1000, 1), "target_ratio": TARGET_RATIO}
    for app in sorted((ROOT / "functions").glob("*/app.py")):
        handler_seconds = seconds(handler_body(app), [layers, str(app.parent)])
        name = app.parent.name
        figures[f"{name}_import_ms"] = round(handler_seconds * 1000, 1)
        figures[f"{name}_ratio_to_boto3"] = round(handler_seconds / boto3_seconds, 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
