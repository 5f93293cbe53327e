"""Commands that make and prepare audio: generate, render, effects, align, import."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fxclone.cli.common import (
    ClipOpt,
    InputDbuOpt,
    KnobOpt,
    MatchLevelOpt,
    MaxLatencyOpt,
    NoAlignOpt,
    OutputDbuOpt,
    WetChannelOpt,
    _bar,
    _knobs,
    _load_json,
    _recording_config,
    app,
    out,
)
from fxclone.errors import FxcloneError


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
