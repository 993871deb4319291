"""Batch job entrypoint: `seqlane-runner --manifest s3://<bucket>/manifests/<run>/<sample>/<version>/manifest.json`.

The log (INFO lines, the engine's own output) goes to stdout; stderr gets exactly one line when the job fails,
`seqlane-runner: error: ...`, printed last, so the job log always ends with the real reason. Exit codes: see
`seqlane.runner.job` (and `--help`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from seqlane.runner.job import ENGINES, EXIT_CODES, EXIT_UNEXPECTED, as_runner_error, run_job

PROG = "seqlane-runner"


def _epilog() -> str:
    codes = "; ".join(f"{code} {meaning}" for code, meaning in sorted(EXIT_CODES.items()))
    return (
        "Exit codes: 0 success; the engine's own code when it fails (DRAGEN's, 128+N for signal N); " + codes + ". "
        "Every failure prints one line on stderr and, once the manifest is read, a result file with status FAILED "
        "under results/<run>/<sample>/<version>/<$AWS_BATCH_JOB_ID>/<$AWS_BATCH_JOB_ATTEMPT>/."
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Stage and verify a sample's FASTQs and reference, run the engine (DRAGEN or the CPU engine), "
        "check its read count, upload outputs and a result file (write-once, per Batch job attempt).",
        epilog=_epilog(),
    )
    parser.add_argument("--manifest", required=True, help="manifest.json: s3:// URI or local path")
    parser.add_argument(
        "--scratch",
        default=os.environ.get("SEQLANE_SCRATCH", "/scratch"),
        help="local working directory (default: $SEQLANE_SCRATCH or /scratch)",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        help="dragen (the default, from $SEQLANE_ENGINE when set) or cpu (minimap2 + bcftools, for local runs "
        "and CPU queues)",
    )
    parser.add_argument("--dragen", help="DRAGEN binary (default: $DRAGEN_BIN, else dragen on PATH)")
    parser.add_argument("--keep-scratch", action="store_true", help="keep the job's scratch directory (for debugging)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        return run_job(
            args.manifest,
            scratch=args.scratch,
            dragen=args.dragen,
            engine=args.engine,
            keep_scratch=args.keep_scratch,
        )
    except Exception as err:  # noqa: BLE001 - one line and a code, never a traceback
        failure = as_runner_error(err)
        sys.stdout.flush()
        print(f"{PROG}: error: {failure}", file=sys.stderr, flush=True)
        return failure.exit_code or EXIT_UNEXPECTED


if __name__ == "__main__":
    sys.exit(main())
