"""The two ways handling a message can fail, and how the loop treats each."""

from __future__ import annotations


class PoisonMessage(Exception):
    """The message itself is bad (undecodable, wrong schema, inconsistent): retrying cannot help.

    The loop sends it to the dead-letter topic with this reason and moves on.
    """


class TransientError(Exception):
    """A dependency is unavailable (Triton, Redis): the message is fine and must not be lost.

    The loop commits nothing past it, rewinds to it and retries after a backoff.
    """


class ConfigError(Exception):
    """Invalid or misspelled configuration, reported at start-up (exit code 1)."""
