"""A stand-in for the `dragen` executable: checks its arguments the way DRAGEN needs them and writes
DRAGEN-named outputs, with `Total input reads` the number of FASTQ records it read (gzipped or not).
FAKE_DRAGEN_EXIT sets its exit code (to test failing jobs), FAKE_DRAGEN_SECONDS its duration, and
FAKE_DRAGEN_TOTAL_READS the Total input reads it reports instead of its own count (to test reconciliation)."""

import argparse
import csv
import gzip
import os
import sys
import time
from pathlib import Path

parser = argparse.ArgumentParser()
for name in (
    "--ref-dir",
    "--fastq-list",
    "--fastq-list-sample-id",
    "--output-directory",
    "--output-file-prefix",
    "--intermediate-results-dir",
):
    parser.add_argument(name, required=True)
for name in (
    "--enable-map-align",
    "--enable-map-align-output",
    "--enable-sort",
    "--enable-duplicate-marking",
    "--enable-variant-caller",
):
    parser.add_argument(name, required=True, choices=["true"])
args = parser.parse_args()
# The job's duration comes first: a job interrupted while it runs is interrupted whatever its inputs (a longer job
# must not cost more transitions either).
time.sleep(float(os.environ.get("FAKE_DRAGEN_SECONDS", "0")))

assert (Path(args.ref_dir) / "hash_table.cfg").is_file(), "no hash_table.cfg in --ref-dir"
assert Path(args.intermediate_results_dir).is_dir(), "no intermediate results dir"
with open(args.fastq_list, newline="") as stream:
    rows = list(csv.DictReader(stream))
assert rows and all(row["RGSM"] == args.fastq_list_sample_id for row in rows)
reads, records = b"", 0
for row in rows:
    for column in ("Read1File", "Read2File"):
        assert os.path.isfile(row[column]), f"{column} {row[column]!r} is not a local file"
        content = Path(row[column]).read_bytes()
        reads += content
        text = gzip.decompress(content) if content[:2] == b"\x1f\x8b" else content
        records += text.count(b"\n") // 4
total_reads = os.environ.get("FAKE_DRAGEN_TOTAL_READS", str(records))

out, prefix = Path(args.output_directory), args.output_file_prefix
(out / "qc").mkdir(parents=True, exist_ok=True)
(out / f"{prefix}.bam").write_bytes(b"BAM\x01" + reads)
(out / f"{prefix}.hard-filtered.vcf.gz").write_bytes(b"##fileformat=VCFv4.2\n")
summary = f"MAPPING/ALIGNING SUMMARY,,Total input reads,{total_reads},100.00\n"
(out / f"{prefix}.mapping_metrics.csv").write_text(summary)
(out / "qc" / f"{prefix}.wgs_coverage_metrics.csv").write_text("COVERAGE SUMMARY,,Average coverage,30.1\n")
exit_code = int(os.environ.get("FAKE_DRAGEN_EXIT", "0"))
if exit_code:
    print(f"fake dragen: ERROR: simulated failure, exiting with {exit_code}", file=sys.stderr, flush=True)
    print("fake dragen: cleaning up", flush=True)
    sys.exit(exit_code)
print("fake dragen: done", flush=True)
