"""Batch job entrypoint: `seqlane-runner --manifest s3://<bucket>/manifests/<run>/<sample>/<version>/manifest.json`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from seqlane.runner.job import ENGINES, RunnerError, run_job


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqlane-runner",
        description="Stage a sample's FASTQs and reference, run the engine (DRAGEN or the CPU engine), upload "
        "outputs and a result file.",
        epilog="Exit codes: DRAGEN's own; 2 bad manifest, unsupported modality or no DRAGEN binary; "
        "3 manifest pinned to another region; 4 an input is missing or changed since the manifest "
        "was written.",
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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        return run_job(
            args.manifest,
            scratch=args.scratch,
            dragen=args.dragen,
            engine=args.engine,
            keep_scratch=args.keep_scratch,
        )
    except RunnerError as err:
        print(f"seqlane-runner: error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
