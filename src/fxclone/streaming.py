"""Block-by-block processing of any registered model, and file-to-file streaming.

:class:`StreamProcessor` keeps a model's explicit state between calls, so audio of any length
goes through in blocks of any size with the same result as one offline pass. ``apply_file``
streams a file from disk to disk with bounded memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from fxclone.audio import atomic_path, audio_info, open_writer
from fxclone.automation import KnobChange
from fxclone.errors import FxcloneError
from fxclone.models.base import EffectModel
from fxclone.realtime import fast_kernel

Progress = Callable[[int, int], None]
RAMP_STEP = 4  # samples: knob values are constant over each step of a knob ramp


def knob_tensor(
    model: EffectModel, values: Mapping[str, float] | None, batch: int = 1
) -> torch.Tensor:
    """Normalised ``(batch, n_knobs)`` tensor from knob values in their units.

    Missing knobs take the middle of their range; unknown names and out-of-range values are
    refused with the valid names and ranges.
    """
    values = dict(values or {})
    unknown = sorted(set(values) - {k.name for k in model.knobs})
    if unknown:
        valid = ", ".join(k.name for k in model.knobs) or "none (this model has no knobs)"
        raise FxcloneError(f"unknown knob(s) {', '.join(unknown)}; this model's knobs: {valid}")
    row = []
    for k in model.knobs:
        v = values.get(k.name)
        if v is None:
            row.append(0.5)
            continue
        if not (min(k.minimum, k.maximum) <= v <= max(k.minimum, k.maximum)):
            lo, hi = min(k.minimum, k.maximum), max(k.minimum, k.maximum)
            raise FxcloneError(
                f"knob {k.name}={v:g} is outside its range {lo:g}..{hi:g} {k.unit}; "
                "choose a value in that range"
            )
        row.append(k.normalise(v))
    return torch.tensor([row] * batch, dtype=torch.float32).reshape(batch, model.n_knobs)


class StreamProcessor:
    """Runs a model on consecutive blocks; ``process`` may be called with any block size.

    A mono model given multi-channel audio processes each channel as its own stream
    (the channels become the batch). Where :mod:`fxclone.realtime` has a compiled kernel for
    the model, blocks go through it (same output to 1e-5, many times faster at small
    blocks; the weights are read once, here); ``reference=True`` forces the model's own
    PyTorch ``step``.

    The stream starts from the state silence leaves (``warm``, the default; as Neural Amp
    Modeler's players do): a model's zero initial state is not what its layers hold after
    silence (biases drive them), and from it a conditioned WaveNet can sound a thump over
    its first receptive field (up to a second is run through, and discarded, at the start
    and on ``reset``). Models whose oscillator runs from the stream's first sample
    (``free_running``) start from their initial state. ``warm=False`` gives exactly the
    model's offline ``forward``.
    """

    def __init__(
        self,
        model: EffectModel,
        knobs: Mapping[str, float] | None = None,
        channels: int = 1,
        reference: bool = False,
        warm: bool = True,
    ) -> None:
        self.model = model.eval()
        self.channels = channels
        self.per_channel = model.channels == 1 and channels > 1
        if not self.per_channel and channels != model.channels:
            raise FxcloneError(
                f"the model expects {model.channels} channel(s) but the audio has {channels}; "
                "convert the audio or use a model trained on that channel count"
            )
        self.batch = channels if self.per_channel else 1
        self._values = dict(knobs or {})  # the knob setting asked for, in units
        self.knobs = knob_tensor(model, knobs, self.batch)
        self.state = model.init_state(self.batch)
        self.kernel = None if reference else fast_kernel(model, self.batch, self.knobs.numpy())
        # A knob change in progress: from, to, its length and position (samples).
        self._ramp = (self.knobs, self.knobs, 0, 0)
        self._warm = 0
        if warm and not model.free_running:
            self._warm = min(max(0, model.receptive_field - 1), model.sample_rate)
        self._settle()

    def _settle(self) -> None:
        """Run the warm-up silence through the model (its output discarded)."""
        if self._warm:
            self._process(np.zeros((self.channels, self._warm), np.float32))

    def set_knobs(self, values: Mapping[str, float], ramp_seconds: float = 0.05) -> None:
        """Change knob values (in their units; the others keep theirs) while streaming.

        The normalised knob vector moves linearly to the new setting over ``ramp_seconds``
        of audio (at the model's sample rate), in steps of RAMP_STEP samples counted from
        the change, so the output has no click and does not depend on the block sizes. A new
        change during a ramp starts from where the ramp had got to.
        """
        if not ramp_seconds >= 0:
            raise FxcloneError(f"ramp_seconds={ramp_seconds} must be >= 0")
        merged = {**self._values, **values}
        target = knob_tensor(self.model, merged, self.batch)
        self._values = merged
        length = int(round(ramp_seconds * self.model.sample_rate))
        if length == 0:
            self._ramp = (target, target, 0, 0)
            self._use_knobs(target)
        else:
            self._ramp = (self.knobs, target, length, 0)

    def _use_knobs(self, knobs: torch.Tensor) -> None:
        self.knobs = knobs
        if self.kernel is not None:
            self.kernel.set_knobs(knobs.numpy())

    @property
    def latency_samples(self) -> int:
        return self.model.latency_samples

    def reset(self) -> None:
        """Back to the state the stream started from (silence before, unless ``warm`` was
        off)."""
        self.state = self.model.init_state(self.batch)
        if self.kernel is not None:
            self.kernel.reset()
        self._settle()

    def process(self, block: np.ndarray) -> np.ndarray:
        """``block``: float32 ``(channels, samples)`` -> model output of the same shape."""
        start, target, length, pos = self._ramp
        if pos >= length or block.shape[1] == 0:
            return self._process(block)
        # A knob ramp in progress: constant knobs over each RAMP_STEP samples of the ramp.
        outs = []
        done = 0
        while done < block.shape[1] and pos < length:
            step = pos // RAMP_STEP
            n = min(RAMP_STEP * (step + 1) - pos, block.shape[1] - done, length - pos)
            frac = min((step + 1) * RAMP_STEP / length, 1.0)
            self._use_knobs(start + (target - start) * frac)
            outs.append(self._process(block[:, done : done + n]))
            done, pos = done + n, pos + n
        self._ramp = (start, target, length, pos)
        if pos >= length:
            self._use_knobs(target)
        if done < block.shape[1]:
            outs.append(self._process(block[:, done:]))
        return np.concatenate(outs, axis=1)

    def _process(self, block: np.ndarray) -> np.ndarray:
        if block.shape[1] == 0:
            return block.astype(np.float32)
        if self.kernel is not None:
            y = self.kernel.process(block[:, None, :] if self.per_channel else block[None])
            return y[:, 0, :] if self.per_channel else y[0]
        return self._process_reference(block)

    @torch.inference_mode()
    def _process_reference(self, block: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32))
        x = x[:, None, :] if self.per_channel else x[None]
        y, self.state = self.model.step(x, self.knobs, self.state)
        y = y[:, 0, :] if self.per_channel else y[0]
        return y.numpy()


def process_array(
    model: EffectModel,
    audio: np.ndarray,
    knobs: Mapping[str, float] | None = None,
    block_size: int = 65536,
    progress: Progress | None = None,
    reference: bool = False,
    warm: bool = True,
) -> np.ndarray:
    """Run ``model`` over a whole ``(channels, samples)`` array in blocks, latency removed.

    ``reference=True`` uses the model's PyTorch ``step`` instead of a compiled kernel;
    ``warm`` as for :class:`StreamProcessor` (silence before the audio).
    """
    proc = StreamProcessor(model, knobs, audio.shape[0], reference=reference, warm=warm)
    lat = proc.latency_samples
    padded = np.concatenate([audio, np.zeros((audio.shape[0], lat), np.float32)], axis=1)
    out = []
    total = padded.shape[1]
    for start in range(0, total, block_size):
        out.append(proc.process(padded[:, start : start + block_size]))
        if progress:
            progress(min(start + block_size, total), total)
    y = np.concatenate(out, axis=1) if out else np.zeros_like(padded)
    return np.ascontiguousarray(y[:, lat:], dtype=np.float32)


def apply_file(
    model: EffectModel,
    in_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    knobs: Mapping[str, float] | None = None,
    block_size: int = 8192,
    progress: Progress | None = None,
    reference: bool = False,
    automation: Sequence[KnobChange] = (),
    ramp_seconds: float = 0.05,
) -> Path:
    """Stream ``in_path`` through ``model`` into ``out_path`` (32-bit float WAV), block by block.

    ``knobs`` is the starting setting; ``automation`` (see :mod:`fxclone.automation`) changes
    knobs at given times, each ramped over ``ramp_seconds``.

    Memory stays bounded whatever the file length. The input must be at the model's sample
    rate or is resampled on the fly (soxr, streaming). The output is written to a temporary
    file and renamed when complete, so a failure leaves no partial file. ``reference=True``
    uses the model's PyTorch ``step`` instead of a compiled kernel.
    """
    src, dst = Path(in_path), Path(out_path)
    if src.resolve() == dst.resolve():
        raise FxcloneError(f"{dst} is also the input file; choose another output path")
    if dst.is_dir():
        raise FxcloneError(f"{dst} is a folder; give a file name such as {dst / 'out.wav'}")
    sr, channels, frames = audio_info(src)
    if frames < 2:
        raise FxcloneError(f"{src} holds only {frames} sample(s); give a longer recording")
    proc = StreamProcessor(model, knobs, channels=channels, reference=reference)
    lat = proc.latency_samples
    out_sr = model.sample_rate
    up = None
    if sr != out_sr:  # the output stays at the model's rate
        import soxr

        up = soxr.ResampleStream(sr, out_sr, channels, dtype="float32", quality="VHQ")
    expected = int(round(frames * out_sr / sr))
    written = 0
    to_skip = lat
    # Knob changes as (sample at the model's rate, values), soonest last.
    pending = [(int(round(c.time_seconds * out_sr)), c.values) for c in automation][::-1]
    ramp, fed = ramp_seconds, 0
    with (
        sf.SoundFile(src) as fin,
        atomic_path(dst) as tmp,
        open_writer(tmp, out_sr, channels) as fout,
    ):
        done = 0
        while True:
            data = _read_block(fin, block_size, src, done)
            last = data.shape[0] < block_size
            if not np.all(np.isfinite(data)):
                bad = done + int(np.argmin(np.all(np.isfinite(data), axis=1)))
                raise FxcloneError(
                    f"{src} contains NaN or Inf samples (the first at sample {bad}); "
                    "re-export it from your editor"
                )
            block = data
            if up is not None:
                block = up.resample_chunk(data, last=last)
            y = _process_automated(proc, np.ascontiguousarray(block.T), fed, pending, ramp)
            fed += block.shape[0]
            if last and lat:
                tail = proc.process(np.zeros((channels, lat), np.float32))
                y = np.concatenate([y, tail], axis=1)
            if to_skip:
                cut = min(to_skip, y.shape[1])
                y, to_skip = y[:, cut:], to_skip - cut
            y = y[:, : max(0, expected - written)]
            fout.write(y.T)
            written += y.shape[1]
            done += data.shape[0]
            if progress:
                progress(done, frames)
            if last:
                break
    return dst


def _process_automated(
    proc: StreamProcessor,
    block: np.ndarray,
    start: int,
    pending: list[tuple[int, dict[str, float]]],
    ramp_seconds: float,
) -> np.ndarray:
    """``proc.process(block)`` with the knob changes due inside it applied at their samples
    (``block`` starts at sample ``start``; ``pending`` is consumed from its end)."""
    outs = []
    done = 0
    while pending and pending[-1][0] < start + block.shape[1]:
        at, values = pending.pop()
        cut = max(at - start, done)
        outs.append(proc.process(block[:, done:cut]))
        proc.set_knobs(values, ramp_seconds)
        done = cut
    outs.append(proc.process(block[:, done:]))
    return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=1)


def _read_block(fin: sf.SoundFile, n: int, src: Path, done: int) -> np.ndarray:
    """The next ``n`` frames; a read failure names the file, not the output being written."""
    try:
        return fin.read(n, dtype="float32", always_2d=True)
    except (sf.SoundFileRuntimeError, OSError) as exc:
        detail = str(exc).strip().splitlines()[-1][:100] if str(exc).strip() else "read error"
        raise FxcloneError(
            f"{src} could not be read past sample {done} ({detail}); re-export or re-copy it"
        ) from None


def streaming_speed(
    model: EffectModel,
    *,
    block_size: int = 64,
    seconds: float = 10.0,
    max_wall_seconds: float = 20.0,
    threads: int = 1,
) -> float:
    """Real-time factor of streaming noise through ``model`` in ``block_size`` blocks.

    Runs on ``threads`` torch threads (one, as a plugin would), through the same path as
    ``fxclone apply`` (a compiled kernel where the family has one). Stops after
    ``max_wall_seconds`` for slow models and reports the rate reached by then.
    """
    import time

    sr = model.sample_rate
    audio = 0.3 * np.random.default_rng(0).standard_normal((1, int(seconds * sr)))
    audio = audio.astype(np.float32)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        proc = StreamProcessor(model, channels=1)
        proc.process(audio[:, :block_size])  # compile / warm up
        proc.reset()
        done, spent = 0, 0.0
        clock = time.perf_counter
        for start in range(0, audio.shape[1], block_size):
            t0 = clock()
            proc.process(audio[:, start : start + block_size])
            spent += clock() - t0
            done = min(start + block_size, audio.shape[1])
            if spent > max_wall_seconds:
                break
    finally:
        torch.set_num_threads(previous)
    return done / sr / max(spent, 1e-9)
