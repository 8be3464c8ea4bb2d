"""`lowres-mt corpora list|fetch`: show the corpus manifests; fetch and verify their files."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from lowres_mt.cli.common import console, human_bytes
from lowres_mt.corpora import list_manifests, load_manifest
from lowres_mt.corpora.fetch import FetchResult, cache_dir, fetch_corpus, is_fetched, mirror_dir
from lowres_mt.corpora.manifest import manifest_names
from lowres_mt.errors import UserError

app = typer.Typer(help="List corpora (manifests in corpora/) and fetch + verify their files.", no_args_is_help=True)


@app.command("list")
def list_cmd() -> None:
    """List every corpus: its sets, roles, languages, license, size, and whether it is cached."""
    table = Table(title="corpora")
    for col in ("name", "sets", "role(s)", "languages", "license", "size", "fetched"):
        table.add_column(col, justify="right" if col == "size" else "left", no_wrap=col in ("name", "size"))
    for manifest in list_manifests():
        roles = dict.fromkeys(spec.role for spec in manifest.sets.values())
        cached = sum(is_fetched(manifest, entry) for entry in manifest.files)
        fetched = "yes" if cached == len(manifest.files) else "no" if cached == 0 else f"{cached}/{len(manifest.files)}"
        table.add_row(manifest.name, ", ".join(manifest.sets), ", ".join(roles), ", ".join(manifest.languages),
                      manifest.license, human_bytes(manifest.size), fetched)
    console.print(table)
    console.print(f"mirror: {mirror_dir() or 'none'}   cache: {cache_dir() / 'corpora'}", highlight=False, soft_wrap=True)


@app.command("fetch")
def fetch_cmd(
    name: str | None = typer.Argument(None, help="corpus name (see `lowres-mt corpora list`)"),
    all_: bool = typer.Option(False, "--all", help="fetch every corpus"),
) -> None:
    """Copy a corpus's files from the mirror (or download them), verify every sha256, and cache them."""
    if all_ == bool(name):
        known = ", ".join(manifest_names())
        raise UserError(f"name one corpus or pass --all, not both or neither (known: {known})")
    manifests = list_manifests() if all_ else [load_manifest(name)]
    total_files = sum(len(m.files) for m in manifests)
    done_bytes = 0
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} files"),
                  console=console, transient=True) as progress:
        task = progress.add_task("verifying", total=total_files)

        def report(result: FetchResult) -> None:
            nonlocal done_bytes
            done_bytes += result.entry.size
            progress.console.print(f"[green]verified[/] {result.corpus}/{result.entry.path}  "
                                   f"sha256 {result.entry.sha256[:12]}…  from {result.source}", highlight=False)
            progress.advance(task)

        for manifest in manifests:
            progress.update(task, description=manifest.name)
            fetch_corpus(manifest, refresh=True, on_file=report)
    console.print(f"{total_files} file(s) from {len(manifests)} corpus/corpora verified "
                  f"({human_bytes(done_bytes)}) into {cache_dir() / 'corpora'}", highlight=False, soft_wrap=True)
