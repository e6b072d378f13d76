"""Registry commands: build the demo district's files and load them."""

from __future__ import annotations

import json
from pathlib import Path

import click

from servicehub.cli import app_command, demo_cli, seed_cli
from servicehub.config import SEED_DIR
from servicehub.registry import demo, services

DEMO_DIR = SEED_DIR / "demo"


def write_demo_files(data: dict[str, list[dict]], directory: Path = DEMO_DIR) -> list[Path]:
    """Write each part of the demo district to <directory>/<part>.json (stable, diff-friendly)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for part, rows in data.items():
        path = directory / f"{part}.json"
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def read_demo_files(directory: Path = DEMO_DIR) -> dict[str, list[dict]]:
    """Read the demo district's files."""
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.json"))}


@demo_cli.command("build")
@click.option("--seed", default=demo.DEMO_SEED, show_default=True, help="Random seed")
def build_command(seed: int) -> None:
    """Regenerate seed_data/demo/ from the generator (same seed, same files)."""
    for path in write_demo_files(demo.build_demo(seed)):
        click.echo(f"wrote {path}")


@seed_cli.command("demo")
@app_command
def seed_demo_command() -> None:
    """Load the demo district from seed_data/demo/ (idempotent)."""
    click.echo(services.load_demo(read_demo_files()).summary())
