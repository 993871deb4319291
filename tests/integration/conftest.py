"""The embedded pipeline the integration tests share: the real template, handlers, ASL and job runner on moto, with
DRAGEN replaced by tests/fakes/dragen.py."""

import gzip

import pytest

from seqlane.local.pipeline import LocalPipeline
from tests.conftest import REGION, ROOT


def fastq(name: str, reads: int = 4) -> bytes:
    records = "".join(f"@{name}:{i}\nACGTACGTAC\n+\nFFFFFFFFFF\n" for i in range(reads))
    return gzip.compress(records.encode(), mtime=0)


@pytest.fixture
def pipeline(aws_credentials, fake_dragen, fake_dragen_exit, tmp_path):
    with LocalPipeline(
        ROOT / "template.yaml",
        REGION,
        scratch=tmp_path / "scratch",
        job_environment={"DRAGEN_BIN": str(fake_dragen)},
        reference_files={"hash_table.cfg": b"reference_version = hg38-v9-r3\n"},
    ) as local:
        yield local
