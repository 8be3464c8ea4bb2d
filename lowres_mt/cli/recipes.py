"""`lowres-mt recipes list|show`."""

from __future__ import annotations

import typer
from rich.syntax import Syntax
from rich.table import Table

from lowres_mt.cli.common import console
from lowres_mt.config import dump_recipe, list_recipes, load_recipe

app = typer.Typer(help="List and show recipes (language-pair configurations).", no_args_is_help=True)


@app.command("list")
def list_cmd() -> None:
    """List the recipes in recipes/."""
    table = Table(title="recipes")
    for col in ("name", "languages", "directions", "base model", "description"):
        table.add_column(col)
    for name in list_recipes():
        cfg = load_recipe(name)
        table.add_row(name, "↔".join(cfg.languages), ", ".join(cfg.directions), cfg.base_model, cfg.description)
    console.print(table)


@app.command("show")
def show_cmd(
    recipe: str = typer.Argument(..., help="recipe name or path to a YAML file"),
    overrides: list[str] = typer.Argument(None, help="KEY=VALUE overrides, e.g. task.tokens=20000"),
) -> None:
    """Print a recipe fully resolved (base merged, overrides applied)."""
    cfg = load_recipe(recipe, overrides or [])
    console.print(Syntax(dump_recipe(cfg), "yaml", background_color="default"))
