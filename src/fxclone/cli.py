"""Command-line interface: parses arguments, calls :mod:`fxclone.journey`, prints results."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fxclone.errors import FxcloneError

app = typer.Typer(
    name="fxclone",
    help="Learn a neural model of an audio effect from audio, measure it, and run it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)

KnobOpt = Annotated[
    list[str] | None, typer.Option("--knob", "-k", help="Knob setting NAME=VALUE (repeatable).")
]


def _bar(label: str) -> Any:
    from fxclone.progress import progress_callback

    return progress_callback(label)


def _knobs(args: list[str] | None) -> dict[str, float]:
    from fxclone.effects import parse_knob_args

    return parse_knob_args(args or [])


def _load_json(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FxcloneError(f"{path}: no such config file; check the path") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise FxcloneError(f"{path} is not valid JSON ({exc}); fix the file") from None
    if not isinstance(data, dict):
        raise FxcloneError(f"{path} must hold a JSON object of config keys")
    return data


@app.command()
def generate(
    out_dir: Annotated[Path, typer.Argument(help="Dataset folder to create.")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    sample_rate: Annotated[int, typer.Option(help="Sample rate in Hz.")] = 48000,
    train_seconds: Annotated[float, typer.Option(help="Seconds of training audio.")] = 120.0,
    val_seconds: Annotated[float, typer.Option(help="Seconds of validation audio.")] = 20.0,
    test_seconds: Annotated[float, typer.Option(help="Seconds of test audio.")] = 30.0,
    from_dir: Annotated[
        Path | None, typer.Option("--from", help="Folder of your own audio to add.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="JSON file of generate settings.")] = None,
) -> None:
    """Write a dataset folder of dry signals (synthetic, plus your own audio with --from)."""
    from fxclone.dataset import GenerateConfig
    from fxclone.journey import generate as run

    settings: dict[str, Any] = {
        "seed": seed,
        "sample_rate": sample_rate,
        "train_seconds": train_seconds,
        "val_seconds": val_seconds,
        "test_seconds": test_seconds,
        "from_dir": str(from_dir) if from_dir else None,
    }
    settings.update(_load_json(config))
    manifest = run(out_dir, GenerateConfig.from_dict(settings), progress=_bar("generate"))
    out.print(f"wrote {manifest}")


@app.command()
def render(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder from `fxclone generate`.")],
    effect: Annotated[str, typer.Option(help="Built-in effect name (see `fxclone effects`).")],
    knob: KnobOpt = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write a new dataset folder instead.")
    ] = None,
) -> None:
    """Render a dataset's dry signals through an effect."""
    from fxclone.journey import render as run

    manifest = run(dataset, effect, _knobs(knob), out_dir=out_dir, progress=_bar("render"))
    out.print(f"wrote {manifest}")


@app.command()
def effects() -> None:
    """List the built-in effects and their knobs."""
    from fxclone.effects import list_effects

    table = Table(title="Built-in effects")
    for col in ("effect", "knob", "unit", "range", "default", "description"):
        table.add_column(col)
    for fx in list_effects():
        table.add_row(f"[bold]{fx.name}", "", "", "", "", fx.description)
        for k in fx.knobs:
            table.add_row(
                "", k.name, k.unit, f"{k.minimum:g}..{k.maximum:g}", f"{k.default:g}", k.description
            )
    out.print(table)


@app.command()
def models() -> None:
    """List the registered models with parameters, receptive field and latency."""
    from fxclone.models.registry import DEFAULT_MODEL, PRESETS, create_model

    table = Table(title="Models")
    for col in ("model", "family", "parameters", "receptive field", "latency", "description"):
        table.add_column(col)
    for name, preset in PRESETS.items():
        m = create_model(name, sample_rate=48000)
        rf = f"{m.receptive_field} samples" if m.receptive_field > 0 else "unbounded (recurrent)"
        label = f"{name} (default)" if name == DEFAULT_MODEL else name
        table.add_row(
            label,
            preset.family,
            f"{m.num_parameters():,}",
            rf,
            f"{m.latency_samples} samples",
            preset.description,
        )
    out.print(table)


@app.command()
def train(
    dataset: Annotated[Path, typer.Argument(help="Rendered dataset folder.")],
    out_path: Annotated[
        Path, typer.Option("--out", "-o", help="Model file to write (.safetensors).")
    ],
    model: Annotated[str | None, typer.Option(help="Model preset (see `fxclone models`).")] = None,
    minutes: Annotated[float | None, typer.Option(help="Wall-time budget in minutes.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum number of epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Windows per batch.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    config: Annotated[Path | None, typer.Option(help="JSON file of training settings.")] = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Checkpoint folder (default OUT.run).")
    ] = None,
    fresh: Annotated[
        bool, typer.Option(help="Ignore existing checkpoints and start over.")
    ] = False,
    accelerator: Annotated[str | None, typer.Option(help="cpu, gpu or auto.")] = None,
) -> None:
    """Train a model on a rendered dataset (resumes from checkpoints when re-run)."""
    from fxclone.journey import train as run
    from fxclone.training import TrainConfig

    settings = _load_json(config)
    for key, value in (
        ("model", model),
        ("max_minutes", minutes),
        ("max_epochs", epochs),
        ("batch_size", batch_size),
        ("learning_rate", lr),
        ("seed", seed),
        ("accelerator", accelerator),
    ):
        if value is not None:
            settings[key] = value
    summary = run(
        dataset,
        out_path,
        TrainConfig.from_dict(settings),
        run_dir=run_dir,
        fresh=fresh,
        progress=sys.stderr.isatty(),
    )
    out.print(
        f"wrote {out_path}: best validation ESR {summary['best_val_esr']:.4g} after "
        f"{summary['epochs']} epoch(s), {summary['train_seconds']:.0f} s"
    )


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
) -> None:
    """Run a saved model over an audio file of any length (streamed from disk to disk)."""
    from fxclone.journey import apply as run

    run(model_path, in_path, out_path, _knobs(knob), block_size=block_size, progress=_bar("apply"))
    out.print(f"wrote {out_path}")


@app.command()
def info(model_path: Annotated[Path, typer.Argument(help="Saved model (.safetensors).")]) -> None:
    """Show a saved model's architecture, knobs and training summary."""
    from fxclone.modelfile import read_metadata

    out.print_json(json.dumps(read_metadata(model_path), default=str))


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
    from fxclone.journey import demo as run

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


def _print_metrics(m: dict[str, Any], name: str | None = None) -> None:
    title = "Test split (never trained on)" + (f": {name}" if name else "")
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("model ESR", "esr"),
        ("model ESR, pre-emphasised", "esr_pre_emph"),
        ("model MAE", "mae"),
        ("model MRSTFT distance", "mrstft"),
        ("baseline ESR: best linear FIR", "esr_linear"),
        ("baseline ESR: best static waveshaper", "esr_static"),
        ("ESR of the dry signal", "esr_dry"),
        ("training time (s)", "train_seconds"),
        ("apply real-time factor", "apply_realtime_factor"),
    ]
    for label, key in rows:
        if key in m:
            v = m[key]
            table.add_row(label, f"{v:.4g}" if isinstance(v, float) else str(v))
    out.print(table)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print one line and exit 2; never a traceback for them."""
    try:
        app(args=argv, prog_name="fxclone")
    except FxcloneError as exc:
        err.print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted; checkpoints are kept, run the same command again to resume")
        sys.exit(130)


if __name__ == "__main__":
    main()
