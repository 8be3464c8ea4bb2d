"""The `lowres-mt` command: a thin typer app. Each command group lives in its own module here,
parses arguments, calls one library function and renders the result with rich."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import click  # noqa: E402
import typer  # noqa: E402

from lowres_mt.cli.common import err_console  # noqa: E402
from lowres_mt.errors import UserError  # noqa: E402

app = typer.Typer(
    name="lowres-mt",
    help="Teach small language models to translate low-resource languages (TELL, SFT, ICL).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from lowres_mt.cli import corpora, data, recipes

    app.add_typer(corpora.app, name="corpora")
    app.add_typer(recipes.app, name="recipes")
    app.command("data")(data.data)
    for optional in ("train", "evaluate", "translate", "select"):
        try:
            module = __import__(f"lowres_mt.cli.{optional}", fromlist=["register"])
        except ModuleNotFoundError as err:
            if err.name != f"lowres_mt.cli.{optional}":
                raise
            continue
        module.register(app)


def main() -> None:
    """Entry point: user mistakes become one line on stderr and exit code 2, never a traceback."""
    _register()
    try:
        app(standalone_mode=False)
    except UserError as err:
        err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err_console.print("interrupted")
        sys.exit(130)
