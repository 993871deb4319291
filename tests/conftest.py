import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REGION = "eu-west-2"


@pytest.fixture
def aws_credentials(monkeypatch):
    """Fake credentials and a default region, so nothing can reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake_dragen(tmp_path) -> Path:
    """An executable `dragen` (tests/fakes/dragen.py run by this interpreter)."""
    path = tmp_path / "bin" / "dragen"
    path.parent.mkdir()
    path.write_text(f'#!/bin/sh\nexec {sys.executable} {ROOT / "tests" / "fakes" / "dragen.py"} "$@"\n')
    path.chmod(0o755)
    return path


@pytest.fixture
def fake_dragen_exit(monkeypatch):
    def set_exit(code: int) -> None:
        monkeypatch.setenv("FAKE_DRAGEN_EXIT", str(code))

    set_exit(0)
    return set_exit


assert os.sep == "/", "seqlane's tests run on POSIX"
