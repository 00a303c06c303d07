"""Exceptions raised by simsite."""


class SiteError(RuntimeError):
    """Building, changing or probing a simulated site failed; the message names the culprit."""
