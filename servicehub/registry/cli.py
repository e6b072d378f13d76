"""Registry commands: build the demo district's files, load them, and generate bigger districts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from servicehub.cli import app_command, demo_cli, seed_cli
from servicehub.config import SEED_DIR
from servicehub.registry import demo, demo_loader

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
    click.echo(demo_loader.load_demo(read_demo_files()).summary())


@demo_cli.command("generate")
@click.option("--recipients", type=click.IntRange(1, 1_000_000), default=20_000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 100_000), default=1_500, show_default=True)
@click.option("--organisations", type=click.IntRange(1, 10_000), default=60, show_default=True)
@click.option("--seed", type=int, default=demo.DEMO_SEED, show_default=True, help="Random seed")
@click.option("--staffing", type=click.Choice(demo.STAFFING), default="profile", show_default=True,
              help="Share the workers by the profiles' head counts (the demo's proportions) or by the workload of "
                   "the needs routed to each organisation")
@app_command
def generate_command(recipients: int, workers: int, organisations: int, seed: int, staffing: str) -> None:
    """Write a bigger district of the demo's shape straight into the database, for load and benchmark work.

    It refuses a database that holds recipients other than the demo district's: use a fresh database.
    """
    started = time.perf_counter()
    shape = demo.Shape(recipients=recipients, workers=workers, organisations=organisations, scale=True,
                       staffing=staffing)
    counts = demo_loader.generate_scale_district(shape, seed)
    elapsed = time.perf_counter() - started
    click.echo(", ".join(f"{n} {part}" for part, n in counts.items()) + f" written in {elapsed:.1f} s")
