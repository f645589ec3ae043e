"""Typed errors raised by emovox.

Every error a user can cause derives from :class:`EmovoxError`, so callers (the CLI, the HTTP
server) can tell a bad input from a bug. Audio problems derive from :class:`AudioError`.

Examples:
    >>> from emovox.errors import AudioTooShortError, AudioError
    >>> issubclass(AudioTooShortError, AudioError)
    True
"""

from __future__ import annotations


class EmovoxError(Exception):
    """Base class of every error emovox raises on purpose."""


class AudioError(EmovoxError, ValueError):
    """The audio cannot be used as input."""


class AudioDecodeError(AudioError):
    """The file or bytes could not be decoded (unreadable, truncated, not audio)."""


class EmptyAudioError(AudioError):
    """The audio has no samples."""


class InvalidAudioError(AudioError):
    """The samples are not usable: NaN/inf values, or a bad shape or sampling rate."""


class AudioTooShortError(AudioError):
    """The clip is shorter than the minimum duration."""


class AudioTooLongError(AudioError):
    """The clip is longer than the configured cap."""


class CorpusError(EmovoxError):
    """A corpus folder or manifest does not have the expected layout."""


class ModelError(EmovoxError):
    """A model directory, checkpoint or encoder weight file is missing, corrupt or mismatched."""
