"""``emovox serve``: the HTTP/WebSocket API and the web page, on uvicorn."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from pathlib import Path

import typer

from emovox.cli import model_option
from emovox.cli.main import app


@app.command()
def serve(
    model_dir: Path | None = model_option.MODEL,
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, min=1, help="Worker processes, each with its own copy of the model."),
    threads: int | None = typer.Option(None, min=1, help="Threads of the model's math per worker "
                                          "(default: CPU cores / workers)."),
    max_upload_mb: float = typer.Option(128.0, help="Largest upload accepted, in MiB (413 above)."),
    max_duration: float = typer.Option(120.0, help="Longest clip /v1/predict accepts, in seconds (422 above)."),
    max_timeline_duration: float = typer.Option(1200.0, help="Longest recording /v1/timeline accepts, in seconds "
                                                "(memory grows about 13 MB per minute of audio per request)."),
    max_batch: int = typer.Option(16, min=1, help="Clips of concurrent requests encoded together."),
    inference_threads: int | None = typer.Option(None, min=1, help="Batches encoded at the same time, each on "
                                                    "--threads threads (default: one per core with one thread each for "
                                                    "an int8 model, else one)."),
    stream_interval: float = typer.Option(0.5, help="Seconds of audio between two streaming updates."),
    stream_window: float = typer.Option(3.0, help="Seconds of audio each streaming update looks at."),
    asr_model: str = typer.Option("whisper-base", "--asr-model", help="ASR model for transcribe=true: whisper-base "
                                  "(multilingual) or whisper-tiny.en."),
    transcribe: bool = typer.Option(False, "--transcribe/--no-transcribe", help="Load --asr-model at start and "
                                    "accept transcribe=true (off: transcribe=true is a 400)."),
    max_transcribe_duration: float = typer.Option(1800.0, help="Longest recording transcribed, in seconds (422 above)."),
    api_key: str | None = typer.Option(None, envvar="EMOVOX_API_KEY", show_default=False,
                                          help="Require this key on /v1/* ('Authorization: Bearer' or 'X-API-Key'); "
                                          "also from $EMOVOX_API_KEY."),
    allowed_origins: str = typer.Option("", help="Comma-separated browser origins (https://app.example.com) allowed "
                                        "besides the server's own page; '*' for any."),
    allowed_hosts: str | None = typer.Option(None, help="Comma-separated Host names served (default: localhost, "
                                                "127.0.0.1, [::1] and --host; any Host when --host is 0.0.0.0 or ::); "
                                                "'*.example.com' matches subdomains, '*' any."),
    rate_limit: float = typer.Option(0.0, min=0.0, help="Requests per second per client address on /v1/* "
                                     "(429 above); 0: no limit."),
    rate_burst: int | None = typer.Option(None, min=1, help="Requests a client may make at once "
                                             "(default: twice --rate-limit)."),
    header_timeout: float = typer.Option(10.0, help="Seconds a request's headers may take (then the connection closes)."),
    body_timeout: float = typer.Option(60.0, help="Seconds a request's body may take (408 after)."),
    keep_alive_timeout: float = typer.Option(5.0, help="Seconds an idle keep-alive connection stays open."),
    max_uploads: int = typer.Option(32, min=1, help="Request bodies read at the same time (503 above)."),
    max_buffered_mb: float = typer.Option(512.0, help="Upload MiB held by all requests together (503 above)."),
    max_streams_per_client: int = typer.Option(8, min=1, help="Websocket streams open from one client address."),
    forwarded_allow_ips: str | None = typer.Option(None, help="Proxies whose X-Forwarded-For/-Proto are "
                                                      "trusted (uvicorn's; default 127.0.0.1)."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
    profile: Path | None = model_option.PROFILE,
) -> None:
    """Serve the model over HTTP: /v1/predict, /v1/timeline, WS /v1/stream, /health, /docs and a web page at /."""
    import uvicorn

    from emovox.errors import EmovoxError
    from emovox.serving.app import configure_logging, create_app
    from emovox.serving.guard import GuardedH11Protocol
    from emovox.serving.limits import ENV_VAR, ApiError, MiB, ServerSettings

    if model_dir is not None and model_dir.exists():
        model_dir = model_dir.resolve()  # before the server leaves its working directory (a name stays a name)
    if profile is not None:
        profile = profile.resolve()
    if workers > 1:  # one worker: threads stay automatic (see emovox.serving.app.create_app)
        threads = threads or max(1, (os.cpu_count() or 1) // workers)
    settings = ServerSettings(
        model_dir=str(model_dir) if model_dir else None, profile=str(profile) if profile else None,
        max_upload_bytes=int(max_upload_mb * MiB),
        max_duration=max_duration, max_timeline_duration=max_timeline_duration, max_batch=max_batch,
        inference_threads=inference_threads, threads=threads, stream_interval=stream_interval,
        stream_window=stream_window, asr_model=asr_model, transcribe=transcribe,
        max_transcribe_duration=max_transcribe_duration, host=host, api_key=api_key or None,
        allowed_origins=_names(allowed_origins), allowed_hosts=_names(allowed_hosts) if allowed_hosts else None,
        rate_limit=rate_limit, rate_burst=rate_burst, header_timeout=header_timeout, body_timeout=body_timeout,
        keep_alive_timeout=keep_alive_timeout, max_concurrent_uploads=max_uploads,
        max_buffered_bytes=int(max_buffered_mb * MiB), max_streams_per_client=max_streams_per_client,
    )
    configure_logging(getattr(logging, log_level.upper(), logging.INFO))
    if settings.allowed_hosts is None and host.strip() in ("", "0.0.0.0", "::", "[::]"):
        logging.getLogger("emovox.serving").warning(
            "listening on every address with any Host header accepted: pass --allowed-hosts (and --api-key) "
            "unless a proxy in front checks them (docs/deploy.md)")
    GuardedH11Protocol.header_timeout = header_timeout
    options = dict(host=host, port=port, log_level=log_level, access_log=False, http=GuardedH11Protocol,
                   timeout_keep_alive=keep_alive_timeout, limit_concurrency=settings.max_connections,
                   ws_max_size=2 * settings.stream_max_message_bytes)
    if forwarded_allow_ips is not None:
        options["forwarded_allow_ips"] = forwarded_allow_ips
    _private_workdir()
    if workers == 1:
        try:
            application = create_app(settings)
        except (EmovoxError, ApiError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        uvicorn.run(application, **options)
    else:
        os.environ[ENV_VAR] = settings.to_env()
        uvicorn.run("emovox.serving.app:app_from_env", factory=True, workers=workers, **options)


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _private_workdir() -> None:
    """Run in a new empty directory of our own (removed at exit): libsndfile looks for a Mac
    resource fork (``._`` or ``.AppleDouble/``) in the working directory when it decodes an
    upload from memory, and such a file in the directory the server was started from made
    it read MP3 uploads as SD2."""
    path = tempfile.mkdtemp(prefix="emovox-serve-")
    os.chdir(path)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
