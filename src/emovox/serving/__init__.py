"""The emovox HTTP/WebSocket server (FastAPI on uvicorn).

Examples:
    >>> from emovox.serving import ServerSettings
    >>> ServerSettings().stream_interval
    0.5
"""

from __future__ import annotations

from emovox.serving.limits import ApiError, ServerSettings

__all__ = ["ApiError", "ServerSettings", "create_app"]


def __getattr__(name: str):
    if name == "create_app":  # lazy: importing the settings does not import FastAPI
        from emovox.serving.app import create_app

        return create_app
    raise AttributeError(name)
