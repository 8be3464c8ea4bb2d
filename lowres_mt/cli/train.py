"""`lowres-mt train RECIPE`: fine-tune the recipe's base model (all weights or LoRA; TELL or SFT).

Multi-process / multi-GPU: start the same command under accelerate or torchrun, e.g.
`accelerate launch --multi_gpu --num_processes 4 -m lowres_mt train en-is` on GPUs, or
`torchrun --nproc_per_node 4 -m lowres_mt train en-is` for N CPU processes (gloo).
"""

from __future__ import annotations

import typer
from rich.table import Table

from lowres_mt.cli.common import console


def train_cmd(
    recipe: str = typer.Argument(..., help="recipe name (see `lowres-mt recipes list`) or YAML path"),
    overrides: list[str] = typer.Argument(None, help="KEY=VALUE recipe overrides, e.g. train.max_steps=20"),
    method: str = typer.Option(None, "--method", help="tell (anchor prompts + general data), sft (task pairs only), tell+book (tell plus grammar-book tasks), tell+context / sft+context (retrieved example pairs and wordlist entries in every prompt)"),
    base_model: str = typer.Option(None, "--base-model", help="registry name, local folder or hub id"),
    name: str = typer.Option(None, "--name", help="run name under runs/ (default: <recipe>-<method>)"),
    resume: bool = typer.Option(False, "--resume", help="continue from the run's last checkpoint"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show the progress bar"),
) -> None:
    """Fine-tune the base model into runs/<name>/: every weight, or a LoRA adapter when the recipe
    has a `lora:` block (data is built first when missing)."""
    from lowres_mt.config import load_recipe, runs_dir
    from lowres_mt.train import rundir
    from lowres_mt.train.loop import train

    extra = list(overrides or [])
    if method:
        extra.append(f"train.method={method}")
    if base_model:
        extra.append(f"base_model={base_model}")
    cfg = load_recipe(recipe, extra)
    run_dir = runs_dir() / (name or rundir.default_run_name(cfg.name, cfg.train.method))
    result = train(cfg, run_dir=run_dir, resume=resume, progress=progress)
    if not _is_main():
        return
    table = Table(title=f"trained {run_dir.name}", show_header=False)
    for key, value in (("steps", result.steps), ("train loss", result.loss), ("dev loss", result.dev_loss),
                       ("dev chrF", result.dev_chrf), ("tokens/s", f"{result.tokens_per_s:.0f}"),
                       ("adapter", str(result.adapter_dir))):
        table.add_row(key, "-" if value is None else str(value))
    console.print(table)


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
