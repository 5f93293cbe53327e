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
    capture_signal: Annotated[
        bool,
        typer.Option(
            "--capture-signal", help="Write the reamping capture file OUT_DIR (a .wav) instead."
        ),
    ] = False,
) -> None:
    """Write a dataset folder of dry signals (synthetic, plus your own audio with --from).

    With --capture-signal, write the file to play through your own pedal or amp instead;
    record the result and give both files to `fxclone train DRY WET` (see docs/capture.md).
    """
    from fxclone.dataset import GenerateConfig
    from fxclone.journey import generate as run

    if capture_signal:
        from fxclone.capture import write_capture

        target = out_dir / "capture.wav" if out_dir.is_dir() else out_dir
        if target.suffix.lower() != ".wav":
            raise FxcloneError(f"{target}: the capture signal is a WAV file; name it *.wav")
        written = write_capture(target, sample_rate)
        out.print(f"wrote {written} (layout in {written.with_suffix('.json')})")
        return

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
    effect: Annotated[
        str | None, typer.Option(help="Built-in effect name (see `fxclone effects`).")
    ] = None,
    command: Annotated[
        str | None,
        typer.Option(help="Program to run per split: {dry}, {wet} and {KNOB} are filled in."),
    ] = None,
    plugin: Annotated[
        Path | None, typer.Option(help="VST3 plugin (.vst3; AU .component on macOS).")
    ] = None,
    preset: Annotated[
        Path | None, typer.Option(help="Preset (.vstpreset) loaded before the knobs.")
    ] = None,
    knob: KnobOpt = None,
    in_channels: Annotated[
        int | None, typer.Option(help="1, or 2: the mono dry on both channels (stereo plugins).")
    ] = None,
    out_channel: Annotated[
        str | None, typer.Option(help="left, right or mix (default) of a stereo output.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds a --command may run per split (default 600).")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write a new dataset folder instead.")
    ] = None,
    sampling: Annotated[
        str,
        typer.Option(help="How knob ranges (--knob NAME=LOW:HIGH) are sampled: lhs, random, grid."),
    ] = "lhs",
    segment_seconds: Annotated[
        float, typer.Option(help="Seconds per segment, each at its own setting (with ranges).")
    ] = 2.0,
    seed: Annotated[int, typer.Option(help="Seed of the knob settings (with ranges).")] = 0,
) -> None:
    """Render a dataset's dry signals through a built-in effect, a command or a plugin.

    A knob given as a range (--knob drive=0:40) is sampled per segment: one dataset across
    every setting, for a model that follows the knobs."""
    from fxclone.journey import render as run
    from fxclone.settings import split_knob_args

    fixed, ranges = split_knob_args(knob or [])
    manifest = run(
        dataset,
        effect,
        _knobs(fixed),
        out_dir=out_dir,
        progress=_bar("render"),
        command=command,
        plugin=plugin,
        preset=preset,
        in_channels=in_channels,
        out_channel=out_channel,
        timeout=timeout,
        ranges=ranges,
        sampling=sampling,
        segment_seconds=segment_seconds,
        seed=seed,
    )
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
def models(
    sample_rate: Annotated[
        int, typer.Option(help="Data sample rate to describe them at (Hz).")
    ] = 48000,
) -> None:
    """List the registered models with parameters, receptive field, latency and native rate."""
    from fxclone.models.registry import DEFAULT_MODEL, PRESETS, create_model

    table = Table(title=f"Models (figures at {sample_rate} Hz)")
    columns = ("model", "family", "parameters", "receptive field", "latency", "runs at")
    for col in (*columns, "description"):
        table.add_column(col)
    for name, preset in PRESETS.items():
        m = create_model(name, sample_rate=sample_rate)
        rf = m.receptive_field
        rf_text = f"{rf:,} samples" if rf > 0 else "unbounded (recurrent)"
        lat = m.latency_samples
        lat_text = f"{lat:,} samples ({1000 * lat / sample_rate:.1f} ms)" if lat else "0"
        rate = m.describe().get("resampling", {}).get("internal_rate", sample_rate)
        rate_text = f"{rate / 1000:g} kHz" + (" (resampled)" if rate != sample_rate else "")
        label = f"{name} (default)" if name == DEFAULT_MODEL else name
        table.add_row(
            label,
            preset.family,
            f"{m.num_parameters():,}",
            rf_text,
            lat_text,
            rate_text,
            preset.description,
        )
        del m
    out.print(table)


def _recording_config(
    no_align: bool,
    match_level: bool,
    allow_clipping: bool,
    wet_channel: str,
    input_dbu: float | None,
    output_dbu: float | None,
    max_latency: float,
) -> Any:
    from fxclone.pairs import ImportConfig

    return ImportConfig(
        max_latency_seconds=max_latency,
        align=not no_align,
        match_level=match_level,
        allow_clipping=allow_clipping,
        wet_channel=wet_channel,
        input_level_dbu=input_dbu,
        output_level_dbu=output_dbu,
    )


NoAlignOpt = Annotated[
    bool, typer.Option("--no-align", help="Recordings: do not align (already aligned).")
]
MatchLevelOpt = Annotated[bool, typer.Option(help="Recordings: scale the wet to the dry's level.")]
ClipOpt = Annotated[bool, typer.Option(help="Recordings: accept a wet that is flat at full scale.")]
WetChannelOpt = Annotated[
    str, typer.Option(help="Recordings: stereo wet channel to use: left, right or mix.")
]
InputDbuOpt = Annotated[
    float | None,
    typer.Option("--input-dbu", help="Recordings: level (dBu) of a 0 dBFS sine at the input."),
]
MaxLatencyOpt = Annotated[
    float, typer.Option(help="Recordings: largest latency to look for (seconds).")
]
OutputDbuOpt = Annotated[
    float | None,
    typer.Option("--output-dbu", help="Recordings: level (dBu) of 0 dBFS at the output."),
]


@app.command()
def train(
    data: Annotated[
        list[Path],
        typer.Argument(help="Dataset folder; or DRY WET recordings, or a folder of pairs."),
    ],
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
    checkpoint_minutes: Annotated[
        float | None,
        typer.Option(help="Write the resume checkpoint at least this often (default 2)."),
    ] = None,
    init: Annotated[
        Path | None,
        typer.Option(help="Start from this model's weights (.safetensors or .nam) to fine-tune."),
    ] = None,
    no_align: NoAlignOpt = False,
    match_level: MatchLevelOpt = False,
    allow_clipping: ClipOpt = False,
    wet_channel: WetChannelOpt = "mix",
    input_dbu: InputDbuOpt = None,
    output_dbu: OutputDbuOpt = None,
    max_latency: MaxLatencyOpt = 1.0,
) -> None:
    """Train a model on a dataset or on your recordings (resumes from checkpoints when re-run).

    Recordings (a dry file and the wet file recorded from it, e.g. the capture signal and
    your rig's output, or Neural Amp Modeler's input.wav and output.wav) are aligned and
    split first; see docs/capture.md.
    """
    from fxclone.journey import train as run
    from fxclone.training import TrainConfig, train_config

    settings = _load_json(config)
    if config is not None:  # a mistake in the file names the file
        try:
            TrainConfig.from_dict(settings)
        except FxcloneError as exc:
            raise FxcloneError(f"{config}: {exc}") from None
    for key, value in (
        ("model", model),
        ("max_minutes", minutes),
        ("max_epochs", epochs),
        ("batch_size", batch_size),
        ("learning_rate", lr),
        ("seed", seed),
        ("accelerator", accelerator),
        ("checkpoint_minutes", checkpoint_minutes),
    ):
        if value is not None:
            settings[key] = value
    try:
        summary = run(
            data,
            out_path,
            train_config(settings),
            run_dir=run_dir,
            fresh=fresh,
            progress=sys.stderr.isatty(),
            recordings=_recording_config(
                no_align,
                match_level,
                allow_clipping,
                wet_channel,
                input_dbu,
                output_dbu,
                max_latency,
            ),
            notice=lambda m: err.print(f"note: {m}", highlight=False, markup=False),
            init=init,
        )
    except KeyboardInterrupt:  # (typer would exit 130 without a word)
        err.print("interrupted; checkpoints are kept, run the same command again to resume")
        raise typer.Exit(130) from None
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
def info(model_path: Annotated[Path, typer.Argument(help="Saved model (.safetensors).")]) -> None:
    """Show a saved model's architecture, knobs and training summary."""
    from fxclone.modelfile import read_metadata

    out.print_json(json.dumps(read_metadata(model_path), default=str))


@app.command()
def align(
    dry: Annotated[Path, typer.Argument(help="The dry file that was played into the rig.")],
    wet: Annotated[Path, typer.Argument(help="The recording of the rig's output.")],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Aligned wet file to write.")],
    report: Annotated[
        Path | None, typer.Option(help="Also write what was done as JSON here.")
    ] = None,
    keep_level: Annotated[
        bool, typer.Option(help="Keep the recording's level instead of matching the dry's.")
    ] = False,
    max_latency: Annotated[float, typer.Option(help="Largest latency to look for (s).")] = 1.0,
) -> None:
    """Line a recording up with its dry signal: latency, clock drift, DC, level, length."""
    from fxclone.align import align_files

    result = align_files(
        dry,
        wet,
        out_path,
        report_path=report,
        match_level=not keep_level,
        max_latency_s=max_latency,
    )
    for line in result.summary_lines():
        out.print(line)
    out.print(f"wrote {out_path}" + (f" and {report}" if report else ""))


@app.command("import")
def import_(
    sources: Annotated[
        list[Path], typer.Argument(help="DRY WET files, or one folder of dry/wet pairs.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Dataset folder to create.")],
    no_align: NoAlignOpt = False,
    match_level: MatchLevelOpt = False,
    allow_clipping: ClipOpt = False,
    wet_channel: WetChannelOpt = "mix",
    input_dbu: InputDbuOpt = None,
    output_dbu: OutputDbuOpt = None,
    max_latency: MaxLatencyOpt = 1.0,
) -> None:
    """Make a dataset folder from your own dry/wet recordings (aligned and split)."""
    from fxclone.pairs import find_pairs, import_pairs

    config = _recording_config(
        no_align, match_level, allow_clipping, wet_channel, input_dbu, output_dbu, max_latency
    )
    manifest = import_pairs(
        find_pairs(sources),
        out_dir,
        config,
        progress=_bar("import"),
        notice=lambda m: out.print(f"[cyan]{m}", highlight=False),
    )
    out.print(f"wrote {manifest}")


@app.command()
def export(
    model_path: Annotated[Path, typer.Argument(help="Saved model (.safetensors).")],
    out_path: Annotated[Path, typer.Argument(help="File to write (.nam, .onnx or .json).")],
    format: Annotated[
        str | None,
        typer.Option(help="nam, onnx or rtneural (default: from OUT's suffix)."),
    ] = None,
) -> None:
    """Export a model for other players: Neural Amp Modeler, ONNX, RTNeural/AIDA-X."""
    from fxclone.export import export as run

    written = run(model_path, out_path, format)
    out.print(f"wrote {written}")


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


@app.command()
def compare(
    data: Annotated[Path, typer.Argument(help="Dataset folder (rendered).")],
    models: Annotated[
        str, typer.Option(help="Comma-separated model presets (see `fxclone models`).")
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for models, runs and the leaderboard.")
    ] = Path("compare_out"),
    minutes: Annotated[float, typer.Option(help="Training wall time per model.")] = 2.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    max_eval_minutes: Annotated[
        float, typer.Option(help="List models slower than this over the test split as unscored.")
    ] = 15.0,
) -> None:
    """Train each model for the same wall time and rank them on the test split.

    Results accumulate in OUT/leaderboard.json and OUT/leaderboard.md; re-running skips models
    already scored and resumes an interrupted one, so long lists can span several sittings.
    """
    from fxclone.compare import COLUMNS, cell
    from fxclone.compare import compare as run

    names = [m.strip() for m in models.split(",") if m.strip()]
    if not names:
        raise FxcloneError("--models is empty; give model names such as lstm,wavenet-lite")
    rows = run(
        data,
        out_dir,
        names,
        minutes=minutes,
        seed=seed,
        max_eval_minutes=max_eval_minutes,
        progress=sys.stderr.isatty(),
        announce=lambda m: out.print(m, markup=False, highlight=False),
    )
    table = Table(title=f"Leaderboard: {data} ({minutes:g} min per model)")
    for _, label in COLUMNS:
        table.add_column(label)
    for r in rows:
        if r.get("test_esr") is None:
            table.add_row(r["model"], f"not scored: {r.get('note')}")
        else:
            table.add_row(*(cell(k, r.get(k)) for k, _ in COLUMNS))
    out.print(table)
    out.print(f"wrote {out_dir / 'leaderboard.json'} and {out_dir / 'leaderboard.md'}")


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
        ("rig repeatability floor ESR (recorded twice)", "repeatability_esr"),
        ("training time (s)", "train_seconds"),
        ("apply real-time factor", "apply_realtime_factor"),
    ]
    for label, key in rows:
        if key in m:
            v = m[key]
            table.add_row(label, f"{v:.4g}" if isinstance(v, float) else str(v))
    out.print(table)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print one line and exit 2; never a traceback for them.

    Notices (:class:`~fxclone.errors.FxcloneNotice` warnings) print as one ``note:`` line. A
    failed write that no command reported itself (disk full, folder not writable) is one
    error line too.
    """
    import errno
    import warnings

    from rich.markup import escape

    from fxclone.errors import FxcloneNotice

    show = warnings.showwarning

    def _show(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
        if issubclass(category, FxcloneNotice):
            err.print(f"[yellow]note:[/yellow] {escape(str(message))}", soft_wrap=True)
        else:
            show(message, category, *args, **kwargs)

    warnings.showwarning = _show
    full = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
    unwritable = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR}
    try:
        app(args=argv, prog_name="fxclone")
    except FxcloneError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
        sys.exit(exc.exit_code)
    except OSError as exc:
        if exc.errno not in full | unwritable:
            raise
        what = f"could not write {exc.filename}" if exc.filename else "a write failed"
        if exc.errno in full:
            line = f"{what} (disk full or file too large); free some space or choose another folder"
        else:
            line = f"{what} ({exc.strerror}); choose a folder that can be written"
        err.print(f"[red]error:[/red] {escape(line)}", soft_wrap=True, highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted; checkpoints are kept, run the same command again to resume")
        sys.exit(130)


if __name__ == "__main__":
    main()
