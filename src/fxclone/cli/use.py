"""Commands that judge and use models: evaluate, abx, mushra, sweep, apply, demo."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fxclone.cli.common import (
    KnobOpt,
    _bar,
    _knobs,
    _print_metrics,
    app,
    out,
)
from fxclone.errors import FxcloneError


@app.command()
def evaluate(
    paths: Annotated[
        list[Path],
        typer.Argument(help="One or more models (.safetensors), then the rendered dataset folder."),
    ],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for metrics and plots.")],
    report: Annotated[
        bool, typer.Option(help="Also measure the effect and write a self-contained report.html.")
    ] = False,
) -> None:
    """Score models on the test split; write metrics.json, plots (and report.html)."""
    from fxclone.journey import evaluate as run

    if len(paths) < 2:
        raise FxcloneError(
            "give at least one model and the dataset folder: "
            "fxclone evaluate MODEL... DATASET --out DIR"
        )
    metrics = run(paths[:-1], paths[-1], out_dir, report=report, progress=_bar("evaluate"))
    if "models" in metrics:
        for name, m in metrics["models"].items():
            _print_metrics({**m, **{k: v for k, v in metrics.items() if k != "models"}}, name)
    else:
        _print_metrics(metrics)
    out.print(f"wrote {out_dir / 'metrics.json'}" + (f" and {metrics['report']}" if report else ""))


@app.command()
def abx(
    a: Annotated[Path, typer.Argument(help="First audio file, e.g. the target effect.")],
    b: Annotated[Path, typer.Argument(help="Second audio file, e.g. the model's output.")],
    out_json: Annotated[
        Path, typer.Option("--out", "-o", help="Results file (resumed if present).")
    ],
    trials: Annotated[int, typer.Option(help="Number of trials.")] = 10,
    seed: Annotated[int, typer.Option(help="Randomisation seed.")] = 0,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 0,
    no_browser: Annotated[bool, typer.Option(help="Do not open a browser.")] = False,
) -> None:
    """A blind ABX test in the browser: is X the first file or the second?"""
    from fxclone.report.listening import AbxSession, serve

    summary = serve(AbxSession(a, b, out_json, trials=trials, seed=seed), port, not no_browser)
    if summary:
        out.print(
            f"{summary['correct']}/{summary['trials']} correct, one-sided binomial "
            f"p = {summary['p_value']:.4g}; wrote {out_json}"
        )


@app.command()
def mushra(
    reference: Annotated[Path, typer.Argument(help="Reference audio, e.g. the target effect.")],
    condition: Annotated[
        list[str], typer.Option("--condition", "-c", help="NAME=FILE to rate (repeatable).")
    ],
    out_json: Annotated[
        Path, typer.Option("--out", "-o", help="Results file (resumed if present).")
    ],
    screens: Annotated[int, typer.Option(help="Excerpts to rate, one per screen.")] = 2,
    seed: Annotated[int, typer.Option(help="Randomisation seed.")] = 0,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 0,
    no_browser: Annotated[bool, typer.Option(help="Do not open a browser.")] = False,
) -> None:
    """A MUSHRA-style test (hidden reference and low-pass anchor) in the browser."""
    from fxclone.report.listening import MushraSession, serve

    conditions: dict[str, Path] = {}
    for item in condition:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise FxcloneError(f"--condition {item!r} is malformed; use --condition NAME=FILE")
        conditions[name] = Path(path)
    session = MushraSession(reference, conditions, out_json, screens=screens, seed=seed)
    summary = serve(session, port, not no_browser)
    if summary:
        table = Table(title="MUSHRA: mean and 95 % confidence interval (t-distribution)")
        for col in ("condition", "mean", "95 % CI", "ratings"):
            table.add_column(col)
        for name, st in summary.items():
            ci = f"{st['ci_low']:.1f}..{st['ci_high']:.1f}" if st.get("ci95") is not None else "-"
            table.add_row(name, f"{st['mean']:.1f}", ci, str(st["n"]))
        out.print(table)
        out.print(f"wrote {out_json}")


@app.command()
def apply(
    model_path: Annotated[Path, typer.Argument(help="Saved model (.safetensors).")],
    in_path: Annotated[Path, typer.Argument(help="Input audio file.")],
    out_path: Annotated[Path, typer.Argument(help="Output WAV file.")],
    knob: KnobOpt = None,
    block_size: Annotated[int, typer.Option(help="Samples per streamed block.")] = 8192,
    automation: Annotated[
        Path | None, typer.Option(help="CSV of knob changes: time,knob,value (seconds, units).")
    ] = None,
    ramp_ms: Annotated[float, typer.Option(help="Milliseconds each knob change ramps.")] = 50.0,
) -> None:
    """Run a saved model over an audio file of any length (streamed from disk to disk)."""
    from fxclone.journey import apply as run

    run(model_path, in_path, out_path, _knobs(knob), block_size=block_size,
        progress=_bar("apply"), automation=automation, ramp_ms=ramp_ms)  # fmt: skip
    out.print(f"wrote {out_path}")


@app.command()
def sweep(
    model_path: Annotated[Path, typer.Argument(help="A knob-conditioned model (.safetensors).")],
    dataset: Annotated[Path, typer.Argument(help="The dataset it was trained on.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the table and heatmaps.")],
    points: Annotated[int, typer.Option(help="How many unseen settings to test.")] = 24,
    min_distance: Annotated[
        float, typer.Option(help="Normalised distance kept from every training setting.")
    ] = 0.1,
    levels: Annotated[int, typer.Option(help="Grid values per knob to choose from.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the choice among equals.")] = 0,
) -> None:
    """Test a knob-conditioned model at settings it never heard: table and heatmaps."""
    from fxclone.modelfile import load_model
    from fxclone.sweep import heatmaps, sweep, write_sweep

    if points < 1 or levels < 2:
        raise FxcloneError("--points must be >= 1 and --levels >= 2")
    model = load_model(model_path).model
    rows, trained = sweep(
        model, dataset, points, min_distance, levels, seed, progress=_bar("sweep")
    )
    extra = {"model": str(model_path), "dataset": str(dataset), "training_settings": len(trained),
             "min_distance": min_distance, "levels": levels}  # fmt: skip
    path = write_sweep(rows, out_dir, extra)
    images = heatmaps(rows, model.knobs, Path(out_dir), trained)
    out.print((Path(out_dir) / "sweep.md").read_text())
    out.print(f"wrote {path} and {len(images)} heatmap(s)")


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for everything.")] = Path(
        "demo_out"
    ),
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 12,
    minutes: Annotated[float, typer.Option(help="Cap on training time in minutes.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """The whole journey on the built-in distortion, on CPU, in minutes."""
    from fxclone.demo import demo as run

    metrics = run(
        out_dir,
        epochs=epochs,
        minutes=minutes,
        seed=seed,
        progress=sys.stderr.isatty(),
        announce=lambda m: out.print(f"[bold cyan]{m}"),
    )
    _print_metrics(metrics)
    out.print(f"wrote {out_dir / 'metrics.json'}")
