"""The `lowres-mt` command: a thin typer app. Each command group lives in its own module here,
parses arguments, calls one library function and renders the result with rich."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import typer  # noqa: E402
from rich.markup import escape  # noqa: E402

from lowres_mt.cli.common import err_console  # noqa: E402
from lowres_mt.errors import UserError  # noqa: E402
from lowres_mt.io import environment_error  # noqa: E402

app = typer.Typer(
    name="lowres-mt",
    help="Teach small language models to translate low-resource languages (TELL, SFT, ICL).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


COMMAND_MODULES = ("init", "corpora", "recipes", "data", "train", "sweep", "select", "evaluate", "score", "translate", "synth", "serve")


def _register() -> None:
    """Add each command module's commands: `register(app)`, or its sub-app `app` as a group."""
    import importlib

    from lowres_mt.cli import data

    app.command("data")(data.data)
    for name in COMMAND_MODULES:
        if name == "data":
            continue
        try:
            module = importlib.import_module(f"lowres_mt.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"lowres_mt.cli.{name}":
                raise
            continue
        if hasattr(module, "register"):
            module.register(app)
        else:
            app.add_typer(module.app, name=name)


def main() -> None:
    """Entry point: user mistakes become one line on stderr and exit code 2, never a traceback.

    Mistakes are a `UserError`, a command line typer rejects (an unknown option, a value out of
    its range: checked before anything is loaded), or a place the environment does not let us
    write (read-only, no permission, disk full)."""
    _register()
    try:
        code = app(standalone_mode=False)
    except UserError as err:
        _fail(str(err))
    except typer.TyperException as err:  # typer's usage errors; --help and no-argument help print as usual
        message = err.format_message() if hasattr(err, "format_message") else str(err)
        ctx = getattr(err, "ctx", None)
        if message:
            _fail(f"{message} (see `{ctx.command_path if ctx else 'lowres-mt'} --help`)", err.exit_code)
        sys.exit(err.exit_code)
    except OSError as err:
        message = environment_error(err)
        if message is None:
            raise
        _fail(message)
    except typer.Abort:  # end of input where a command asked for some
        err_console.print("aborted")
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)
