"""Commands that make and keep models: models, train, compare, info, export."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fxclone.cli.common import (
    ClipOpt,
    InputDbuOpt,
    MatchLevelOpt,
    MaxLatencyOpt,
    NoAlignOpt,
    OutputDbuOpt,
    WetChannelOpt,
    _load_json,
    _recording_config,
    app,
    err,
    out,
)
from fxclone.errors import FxcloneError


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
    polished = summary.get("polish")
    if polished and polished["kept"]:
        how = f" (polished from {polished['start_val_esr']:.4g} in {polished['iterations']} steps)"
    elif polished:
        how = " (the polish did not improve it)"
    else:
        how = ""
    out.print(
        f"wrote {out_path}: best validation ESR {summary['best_val_esr']:.4g}{how} after "
        f"{summary['epochs']} epoch(s), {summary['train_seconds']:.0f} s"
    )


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
        float, typer.Option(help="Score models slower than this over the test split on part of it.")
    ] = 15.0,
) -> None:
    """Train each model for the same wall time and rank them on the test split.

    Results accumulate in OUT/leaderboard.json and OUT/leaderboard.md; re-running skips models
    already scored and resumes an interrupted one, so long lists can span several sittings.
    """
    from fxclone.compare import COLUMNS, row_cells
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
            table.add_row(*row_cells(r))
    out.print(table)
    out.print(f"wrote {out_dir / 'leaderboard.json'} and {out_dir / 'leaderboard.md'}")


@app.command()
def info(model_path: Annotated[Path, typer.Argument(help="Saved model (.safetensors).")]) -> None:
    """Show a saved model's architecture, knobs and training summary."""
    from fxclone.modelfile import read_metadata

    out.print_json(json.dumps(read_metadata(model_path), default=str))


@app.command()
def export(
    model_path: Annotated[Path, typer.Argument(help="Saved model (.safetensors).")],
    out_path: Annotated[
        Path, typer.Argument(help="File to write (.nam, .onnx, .json, or .wav for a response).")
    ],
    format: Annotated[
        str | None,
        typer.Option(help="nam, onnx, rtneural or wav (default: from OUT's suffix)."),
    ] = None,
) -> None:
    """Export a model for other players: Neural Amp Modeler, ONNX, RTNeural/AIDA-X, or an
    impulse response (WAV) for convolution plugins."""
    from fxclone.export import export as run

    written = run(model_path, out_path, format)
    out.print(f"wrote {written}")
