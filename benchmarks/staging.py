"""Staging with verification vs a plain download of the same objects, against a moto server on 127.0.0.1.

Verified: the runner's own staging (`seqlane.runner.job.stage_fastq`, files 4 at a time): HeadObject, ranged GETs
with If-Match (`S3Storage`, 8 MiB parts, 10 in flight per file), each chunk written to disk and fed to the gzip
and FASTQ checks (in one worker process per file, as the runner does), reads counted. Plain: boto3's transfer
manager, `download_file` with the same part size and concurrency (10 per file, files 4 at a time), no checks.
moto answers a ranged GET by reading the whole object, so with 8 MiB parts its own work grows with the object
and competes for the CPU with the checks; --part-mb 64 shows the ratio with less of that. The two alternate for
--rounds rounds each (the median is reported) so that drift on this shared machine hits both alike; the staged
files are deleted after every round.

The inputs are gzipped FASTQs of at least --min-mb MB each (Illumina-style headers, 151 bp reads, NovaSeq-binned
qualities, compression level 1 as BCL Convert writes them), generated once and cached in
$SEQLANE_BENCH_CACHE (default: <tmp>/seqlane-bench). The moto server runs in its own process, so its serving does
not share this process's GIL.

ratio = plain_seconds / verified_seconds (target >= 0.8: verification costs at most a quarter more than a plain
download). Figures: lines on stderr, one JSON object as the last line of stdout.
Run: .venv/bin/python benchmarks/staging.py [--files 2] [--min-mb 200] [--rounds 3] [--part-mb 8] [--processes N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers"), str(ROOT)]
REGION = "eu-west-2"
BUCKET = "ingest"
READ_LENGTH = 151
RECORDS_PER_BLOCK = 20_000
TARGET_RATIO = 0.8
CONCURRENCY = 10
FILES_AT_ONCE = 4


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def generate(path: Path, min_bytes: int, read: int, seed: int) -> int:
    """A gzipped FASTQ of at least min_bytes compressed; returns its record count (also kept beside it)."""
    counted = path.with_suffix(".reads")
    if path.is_file() and counted.is_file() and path.stat().st_size >= min_bytes:
        return int(counted.read_text())
    rng = random.Random(seed)
    bases = bytes.maketrans(bytes(range(256)), b"ACGT" * 64)
    # NovaSeq qualities are binned to F : , # - mostly F
    quals = bytes.maketrans(bytes(range(256)), b"F" * 200 + b":" * 40 + b"," * 12 + b"#" * 4)
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    records, written, tile = 0, 0, 1101
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        while written < min_bytes:
            seqs = rng.randbytes(READ_LENGTH * RECORDS_PER_BLOCK).translate(bases)
            qual = rng.randbytes(READ_LENGTH * RECORDS_PER_BLOCK).translate(quals)
            lines = []
            for i in range(RECORDS_PER_BLOCK):
                x, y = rng.randrange(1000, 30000), rng.randrange(1000, 30000)
                start = i * READ_LENGTH
                lines.append(
                    b"@LH00123:42:ADEMOXXXXX:1:%d:%d:%d %d:N:0:ACGTACGT+TTGCAATG\n%s\n+\n%s\n"
                    % (tile, x, y, read, seqs[start : start + READ_LENGTH], qual[start : start + READ_LENGTH])
                )
            tile += 1
            records += RECORDS_PER_BLOCK
            data = compressor.compress(b"".join(lines))
            out.write(data)
            written += len(data)
        out.write(compressor.flush())
    partial.replace(path)
    counted.write_text(str(records))
    return records


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_moto(port: int) -> subprocess.Popen:
    code = (
        "import time\n"
        "from moto.server import ThreadedMotoServer\n"
        f"server = ThreadedMotoServer(ip_address='127.0.0.1', port={port}, verbose=False)\n"
        "server.start()\n"
        "while True: time.sleep(3600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto server did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--min-mb", type=float, default=200.0, help="compressed size of each file, in MB (10^6)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--part-mb", type=int, default=8, help="part size of both, MiB (default 8, as the transfer manager's)"
    )
    parser.add_argument(
        "--processes", type=int, help="FASTQ check worker processes (default: as the runner chooses, 0 = in place)"
    )
    args = parser.parse_args()

    cache = Path(os.environ.get("SEQLANE_BENCH_CACHE", Path(tempfile.gettempdir()) / "seqlane-bench"))
    cache.mkdir(parents=True, exist_ok=True)
    min_bytes = int(args.min_mb * 1_000_000)
    names = [f"BENCH_S1_L001_R{(i % 2) + 1}_{i // 2 + 1:03d}.fastq.gz" for i in range(args.files)]
    started = time.monotonic()
    reads = {name: generate(cache / name, min_bytes, (i % 2) + 1, seed=i) for i, name in enumerate(names)}
    sizes = {name: (cache / name).stat().st_size for name in names}
    say(f"inputs: {args.files} files, {sum(sizes.values()) / 1e6:.1f} MB, {sum(reads.values())} reads "
        f"(ready in {time.monotonic() - started:.1f} s, cached in {cache})")  # fmt: skip

    port = free_port()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    moto = start_moto(port)
    try:
        return run(args, cache, names, reads, sizes)
    finally:
        moto.terminate()
        moto.wait(timeout=30)


def run(args, cache: Path, names: list[str], reads: dict[str, int], sizes: dict[str, int]) -> int:
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    from seqlane.manifest import FastqFile
    from seqlane.runner import fastq, job
    from seqlane.runner.storage import S3Storage
    from seqlane.runner.verify import Verifiers

    client = boto3.client("s3", region_name=REGION, config=Config(max_pool_connections=64))
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    part_size = args.part_mb * 1024 * 1024
    config = TransferConfig(multipart_chunksize=part_size, multipart_threshold=part_size, max_concurrency=CONCURRENCY)
    started = time.monotonic()
    for name in names:
        client.upload_file(str(cache / name), BUCKET, f"run/{name}", Config=config)
    say(f"uploaded to moto in {time.monotonic() - started:.1f} s")
    files = []
    for name in names:
        head = client.head_object(Bucket=BUCKET, Key=f"run/{name}")
        files.append(FastqFile(key=f"run/{name}", lane=1, read=1, size=head["ContentLength"], etag=head["ETag"]))

    storage = S3Storage(REGION, client=client, part_size=part_size, concurrency=CONCURRENCY)
    processes = job._verifier_processes(len(files)) if args.processes is None else args.processes
    dest = Path(tempfile.mkdtemp(prefix="seqlane-bench-staged-", dir=cache))

    def plain() -> None:
        def fetch(fastq_file: FastqFile) -> None:
            client.download_file(BUCKET, fastq_file.key, str(dest / Path(fastq_file.key).name), Config=config)

        with ThreadPoolExecutor(max_workers=FILES_AT_ONCE) as pool:
            list(pool.map(fetch, files))

    counted: dict[str, int | None] = {}

    def verified() -> None:
        # as job.stage does: the checks in worker processes, one per file staged at once
        with Verifiers(processes=processes) as verifiers:

            def fetch(fastq_file: FastqFile, abort: threading.Event) -> None:
                uri = f"s3://{BUCKET}/{fastq_file.key}"
                path = dest / Path(fastq_file.key).name
                counted[fastq_file.key] = job.stage_fastq(storage, uri, fastq_file, path, abort, verifiers=verifiers)

            job._concurrently(fetch, files)

    timings: dict[str, list[float]] = {"plain": [], "verified": []}
    for round_number in range(1, args.rounds + 1):
        order = [("plain", plain), ("verified", verified)]
        if round_number % 2 == 0:
            order.reverse()
        for label, work in order:
            start = time.perf_counter()
            work()
            elapsed = time.perf_counter() - start
            staged = sum((dest / name).stat().st_size for name in names)
            assert staged == sum(sizes.values()), f"{label} staged {staged} bytes"
            for name in names:
                (dest / name).unlink()
            timings[label].append(elapsed)
            say(f"round {round_number}: {label:8s} {elapsed:6.2f} s")
    dest.rmdir()
    assert counted == {f"run/{name}": reads[name] for name in names}, counted

    megabytes = sum(sizes.values()) / 1e6
    plain_seconds = statistics.median(timings["plain"])
    verified_seconds = statistics.median(timings["verified"])
    ratio = plain_seconds / verified_seconds
    figures = {
        "files": len(names),
        "mb": round(megabytes, 1),
        "mb_per_file": [round(sizes[name] / 1e6, 1) for name in names],
        "reads": sum(reads.values()),
        "plain_seconds": round(plain_seconds, 2),
        "verified_seconds": round(verified_seconds, 2),
        "plain_mb_s": round(megabytes / plain_seconds, 1),
        "verified_mb_s": round(megabytes / verified_seconds, 1),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "met": ratio >= TARGET_RATIO,
        "rounds": args.rounds,
        "plain_runs": [round(t, 2) for t in timings["plain"]],
        "verified_runs": [round(t, 2) for t in timings["verified"]],
        "part_size": part_size,
        "concurrency_per_file": CONCURRENCY,
        "files_at_once": FILES_AT_ONCE,
        "inflate": fastq._zlib.__name__,
        "verifier_processes": processes,
        "cpus": os.cpu_count(),
    }
    say(
        f"{megabytes:.0f} MB: plain {plain_seconds:.2f} s ({figures['plain_mb_s']} MB/s), verified "
        f"{verified_seconds:.2f} s ({figures['verified_mb_s']} MB/s, {sum(reads.values())} reads counted): "
        f"ratio {ratio:.2f} (target >= {TARGET_RATIO})"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
