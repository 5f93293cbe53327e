"""The CLI's shared parts: the Typer app, the consoles, and helpers the commands share."""

from __future__ import annotations

import json
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
