"""S3 -> EventBridge "Object Created" events from moto with the object key encoded as AWS encodes it.

AWS writes the key URL-encoded as a form value in both event forms (EventBridge and classic notifications:
"+" for a space, "%2B" for "+", "%40" for "@"), and `seqlane.uploads` decodes it once. moto 5.2.x encodes the
classic form (quote_plus, "/" as "%2F") but puts the raw key into the EventBridge detail
(`moto.s3.notifications._send_event_bridge_message`, which reads `key.name`), so on the local stack a key holding
"+" or "%" would be decoded into another key. This hands that function a view of the key whose `name` is encoded
as AWS does (`seqlane.uploads.event_key`); nothing else about the event changes. moto is pinned: internal API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.s3 import notifications

from seqlane.uploads import event_key

_original: Callable[..., None] | None = None  # moto's _send_event_bridge_message while installed


class _EncodedKey:
    """A moto FakeKey whose name reads as an event carries it."""

    def __init__(self, key: Any) -> None:
        self._key = key

    @property
    def name(self) -> str:
        return event_key(self._key.name)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._key, attribute)


def _send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
    assert _original is not None  # moto calls this only while installed
    _original(account_id, bucket, event_name, _EncodedKey(key))


def install() -> None:
    global _original  # noqa: PLW0603 - one process-wide patch of a module function, undone by uninstall
    if _original is None:
        _original = notifications._send_event_bridge_message
        notifications._send_event_bridge_message = _send_event_bridge_message


def uninstall() -> None:
    global _original  # noqa: PLW0603
    if _original is not None:
        notifications._send_event_bridge_message = _original
        _original = None
