"""``emovox serve``: the HTTP/WebSocket API and the web page, on uvicorn."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

import typer

from . import app, model_option


@app.command()
def serve(
    model_dir: Optional[Path] = model_option.MODEL,
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, min=1, help="Worker processes, each with its own copy of the model."),
    threads: Optional[int] = typer.Option(None, min=1, help="Threads of the model's math per worker "
                                          "(default: CPU cores / workers)."),
    max_upload_mb: float = typer.Option(128.0, help="Largest upload accepted, in MiB (413 above)."),
    max_duration: float = typer.Option(120.0, help="Longest clip /v1/predict accepts, in seconds (422 above)."),
    max_timeline_duration: float = typer.Option(10800.0, help="Longest recording /v1/timeline accepts, in seconds."),
    max_batch: int = typer.Option(16, min=1, help="Clips of concurrent requests encoded together."),
    inference_threads: Optional[int] = typer.Option(None, min=1, help="Batches encoded at the same time, each on "
                                                    "--threads threads (default: one per core with one thread each for "
                                                    "an int8 model, else one)."),
    stream_interval: float = typer.Option(0.5, help="Seconds of audio between two streaming updates."),
    stream_window: float = typer.Option(3.0, help="Seconds of audio each streaming update looks at."),
    asr_model: str = typer.Option("whisper-base", "--asr-model", help="ASR model for transcribe=true: whisper-base "
                                  "(multilingual) or whisper-tiny.en; loaded on the first such request."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Serve the model over HTTP: /v1/predict, /v1/timeline, WS /v1/stream, /health, /docs and a web page at /."""
    import uvicorn

    from ..errors import EmovoxError
    from ..server.app import configure_logging, create_app
    from ..server.limits import ENV_VAR, MiB, ServerSettings

    if workers > 1:  # one worker: threads stay automatic (see emovox.server.app.create_app)
        threads = threads or max(1, (os.cpu_count() or 1) // workers)
    settings = ServerSettings(
        model_dir=str(model_dir) if model_dir else None, max_upload_bytes=int(max_upload_mb * MiB),
        max_duration=max_duration, max_timeline_duration=max_timeline_duration, max_batch=max_batch,
        inference_threads=inference_threads, threads=threads, stream_interval=stream_interval, stream_window=stream_window, asr_model=asr_model,
    )
    configure_logging(getattr(logging, log_level.upper(), logging.INFO))
    options = dict(host=host, port=port, log_level=log_level, access_log=False,
                   ws_max_size=2 * settings.stream_max_message_bytes)
    if workers == 1:
        try:
            application = create_app(settings)
        except EmovoxError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        uvicorn.run(application, **options)
    else:
        os.environ[ENV_VAR] = settings.to_env()
        uvicorn.run("emovox.server.app:app_from_env", factory=True, workers=workers, **options)
