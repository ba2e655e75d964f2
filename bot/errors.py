"""Errors of dvc-bot.

``BotError`` and its subclasses are *expected* problems that a person can act
on (bad content, a busy port, a missing token): the CLI prints their message
as one Vietnamese line and exits non-zero, never with a traceback. Anything
else is a bug: the runner logs it with context and the citizen gets one calm
apology.
"""

from __future__ import annotations


class BotError(Exception):
    """An expected problem with a message for the person running the bot."""

    exit_code = 1


class StoreUnavailable(BotError):
    """The database could not be reached this moment (a server restarting): nothing was written."""


class UsageError(BotError):
    """The command line was wrong."""

    exit_code = 2


class ContentError(BotError):
    """The content (procedures.yaml, flows) could not be loaded."""
