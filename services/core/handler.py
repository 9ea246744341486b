"""What a service implements: a Handler that turns one input message into output records."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from google.protobuf.message import Message
from opentelemetry import trace

from services.core.errors import TransientError
from services.core.messages import Output

Result = list[Output] | Exception
# Topic -> the protobuf type its records carry: how a service reading several topics (alert:
# tracks and drift events) is told what to decode each record as.
Inputs = Mapping[str, type[Message]]


@dataclass
class Incoming:
    """A decoded input message and the span the loop opened for it."""

    message: Message
    span: trace.Span


class Handler(ABC):
    # What the records of a one-topic service decode to. A service of several topics gives the
    # loop `Inputs` instead, and its handle() tells the messages apart by type.
    input_type: ClassVar[type[Message]]

    @abstractmethod
    def handle(self, message: Message) -> list[Output]:
        """Raise PoisonMessage for a bad message, TransientError when a dependency is down."""

    def handle_batch(self, items: list[Incoming]) -> list[Result]:
        """One result per item, in order. Override to overlap work (inference does)."""
        results: list[Result] = []
        for item in items:
            if results and isinstance(results[-1], TransientError):
                results.append(results[-1])  # a dependency is down: don't hammer it per message
                continue
            with trace.use_span(item.span, end_on_exit=False):
                try:
                    results.append(self.handle(item.message))
                except Exception as exc:
                    results.append(exc)
        return results

    def tick(self) -> list[Output]:
        """Called about once a second, also when no message arrives: for outputs driven by
        time rather than input (a camera that went silent)."""
        return []

    def before_commit(self) -> None:
        """Outputs of the batch are acknowledged; offsets are committed next. Persist state
        here (not in handle) so stored state never runs ahead of what was published."""

    def after_commit(self, committed: list[Message]) -> None:
        """These messages were handled and their offsets committed: nothing redelivers them to
        this group, so payloads only this service reads can go now (a crash before this leaves
        them to TTL). Dead-lettered messages are not among them: a bad record deletes nothing."""

    def reload_state(self) -> None:
        """Partitions moved, or a batch was rewound: state cached in memory may be ahead of
        what was committed (or belong to keys owned elsewhere); reload it from the store."""

    def close(self) -> None:
        """Release clients; called once after the loop has drained."""
