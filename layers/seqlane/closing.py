"""Work that would grow with the run, split into queue messages of bounded work (ingest's own queue).

Closing a run by its completion marker means listing the run folder and telling each sample which reads to wait
for; reading a sample sheet means declaring each sample it lists. For a run of 10,000 samples that is 40,000 keys
and 10,000 writes: more than one Lambda invocation should do. So, in the order the single invocation did it
(expectations first, completion second, then a fresh read):

- `close-run` lists one page of the run folder (at most LIST_PAGE keys) and records which reads each sample of the
  page must wait for (a union, so a sample whose keys run over two pages gets both), then sends the `close-run`
  message of the next page; the last page marks the run complete and sends `advance-run`. Nothing starts while
  the run is being listed: a sample cannot start on half of its listing.
- `advance-run` reads one page of the run's samples (at most ADVANCE_PAGE) and sends an `advance-sample` message
  for each that is ready and not started, then sends itself for the next page.
- `advance-sample` starts one sample if it is ready (read again, consistently).
- `declare-samples` declares at most DECLARE_CHUNK samples of a sample sheet (the sheet's invocation parsed it once
  and sent every chunk) and sends an `advance-sample` message for each; the chunk that completes the sheet's set
  (counted on the run) records the sheet and sends `advance-run`.

Every step is idempotent (slot sets are unions, declarations are the sheet's, starts are claimed), so a message
delivered twice, or a step that crashed and is retried, changes nothing more.
"""

from __future__ import annotations

from typing import Any

WORK = "seqlane_work"  # the key that tells a work message from an S3 event
CLOSE_RUN, ADVANCE_RUN, ADVANCE_SAMPLE = "close-run", "advance-run", "advance-sample"
DECLARE_SAMPLES = "declare-samples"
WORK_KINDS = (CLOSE_RUN, ADVANCE_RUN, ADVANCE_SAMPLE, DECLARE_SAMPLES)
LIST_PAGE = 250  # keys: at most this many expectation writes per invocation
ADVANCE_PAGE = 100
DECLARE_CHUNK = 50


class UnusableWork(ValueError):
    """A work message that cannot be done (an unknown kind, missing fields): rejected once."""


def is_work(message: Any) -> bool:
    return isinstance(message, dict) and WORK in message


def work_kind(message: dict[str, Any]) -> str:
    kind = message.get(WORK)
    if kind not in WORK_KINDS or not isinstance(message.get("run_id"), str) or not message["run_id"]:
        raise UnusableWork(f"not a seqlane work message: {WORK}={kind!r}, run_id={message.get('run_id')!r}")
    return kind
