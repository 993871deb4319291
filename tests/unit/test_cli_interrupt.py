"""SIGINT and SIGTERM during `seqlane local run` / `demo`: one Interrupted, unwinding the command's contexts."""

from __future__ import annotations

import logging
import os
import signal
import time

import pytest

from seqlane.cli import Interrupted, _interruptible


@pytest.fixture(autouse=True)
def logging_back_on():
    yield
    logging.disable(logging.NOTSET)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interruptible_turns_the_signal_into_interrupted_once(signum, code):
    # Given a block running under _interruptible, with a clean-up that a second signal must not cut short
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    cleaned_up = False

    # When the process gets the signal, then the same signal again during clean-up
    with pytest.raises(Interrupted) as caught, _interruptible():
        try:
            os.kill(os.getpid(), signum)
            time.sleep(5)  # interrupted at once
        finally:
            os.kill(os.getpid(), signum)  # ignored: the clean-up runs to its end
            cleaned_up = True

    # Then one Interrupted carries the signal and the shell's exit code, the clean-up finished, handlers are back
    assert (caught.value.signum, caught.value.exit_code) == (signum, code)
    assert cleaned_up
    assert {s: signal.getsignal(s) for s in before} == before
    # And the stopping stack's threads can no longer log to the terminal
    assert logging.getLogger("moto").isEnabledFor(logging.CRITICAL) is False
