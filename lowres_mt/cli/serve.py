"""`lowres-mt serve`: a trained run or a base model behind an OpenAI-compatible HTTP API."""

from __future__ import annotations

from pathlib import Path

import typer

from lowres_mt.cli.common import BACKEND_HELP, QUANTIZATION_HELP, console, err_console
from lowres_mt.errors import UserError


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)


def serve_cmd(
    run: Path = typer.Option(None, "--run", help="trained run folder, e.g. runs/en-is-tell"),
    base_model: str = typer.Option(None, "--base-model", help="base model name or folder (no --run)"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind (0.0.0.0 exposes it to the network)"),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="port (0 = any free port)"),
    model_name: str = typer.Option(None, "--model-name", help="the name /v1/models reports (default: the run "
                                                              "folder's or base model's name)"),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="requests decoded together at most"),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens", min=1, help="default max_tokens of a request"),
    window_ms: int = typer.Option(20, "--batch-window-ms", min=0, help="how long a request waits for others "
                                                                      "to share its batch"),
    verbose: bool = typer.Option(False, "--verbose", help="log every request"),
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
    quantization: str = typer.Option("auto", "--quantization", help=QUANTIZATION_HELP),
) -> None:
    """Serve /v1/chat/completions, /v1/completions and /v1/models (greedy decoding) until Ctrl-C or SIGTERM.

    Stopping is graceful: no new connections, the requests in flight finish (up to 30 s), exit 0.
    A second Ctrl-C or SIGTERM stops at once."""
    from lowres_mt.api.server import GRACE_S, Service, make_server, serve_until_stopped
    from lowres_mt.translate import DecodeSettings, open_translator

    if run is not None and base_model is not None:
        raise UserError("give either --run or --base-model, not both (a run knows its base model)")
    settings = DecodeSettings(batch_size, max_new_tokens, backend=backend, quantization=quantization)
    engine = open_translator(run, base_model, settings, progress=False).engine
    name = model_name or (run.name if run is not None else Path(base_model).name)
    service = Service(engine, name, window_s=window_ms / 1000)
    try:
        server = make_server(service, host, port, log=err_console.print if verbose else None)
    except OSError as err:  # port taken, address not on this machine, privileged port
        service.batcher.close()
        raise UserError(f"cannot listen on {host}:{port} ({err.strerror or err}); pick another --port or --host") from None
    address, bound = server.server_address[:2]

    def announce() -> None:  # once SIGTERM and Ctrl-C stop it gracefully
        console.print(f"serving {name} at http://{address}:{bound}/v1 (Ctrl-C stops)", highlight=False)

    cut_off = serve_until_stopped(server, announce)
    err_console.print(f"stopped; {cut_off} requests still running after {GRACE_S:.0f} s were cut off" if cut_off
                      else "stopped", highlight=False)
