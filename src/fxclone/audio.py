"""Audio file I/O, resampling and loudness: the only module that touches audio files.

Audio is float32 numpy of shape ``(channels, samples)``; the sample rate travels beside it.
Every write goes to a temporary file in the destination folder and is renamed into place, so
an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from fxclone.errors import FxcloneError, FxcloneNotice

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".aif", ".aiff")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise FxcloneError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise FxcloneError(f"{path} is a folder, not an audio file; pass a file inside it")
    if path.stat().st_size == 0:
        raise FxcloneError(f"{path} is empty (0 bytes); re-export or re-record it")


def wav_shortfall(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """``(declared, present)`` frames of a WAV file cut short inside its data, else ``None``.

    libsndfile reads such a file as far as it goes without a word; this compares the data
    chunk's declared size with the bytes actually present (placeholder sizes 0 and 2**32-1,
    written by recorders that stream, are not counted as truncation).
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align, pos = 0, 12
            while pos + 8 <= size:
                f.seek(pos)
                chunk = f.read(8)
                cid, n = chunk[:4], int.from_bytes(chunk[4:8], "little")
                if cid == b"fmt ":
                    block_align = int.from_bytes(f.read(16)[12:14], "little")
                elif cid == b"data":
                    present = size - pos - 8
                    if block_align <= 0 or n in (0, 0xFFFFFFFF) or present >= n:
                        return None
                    return n // block_align, present // block_align
                pos += 8 + n + (n & 1)
    except OSError:
        return None
    return None


def _note_truncated(p: Path) -> None:
    short = wav_shortfall(p)
    if short is not None:
        declared, present = short
        if present < 2:
            raise FxcloneError(
                f"{p} is truncated: its header promises {declared} samples but {present} are "
                "present; re-export or re-copy the file"
            )
        warnings.warn(
            FxcloneNotice(
                f"{p} is truncated: its header promises {declared} samples but only {present} "
                f"are present; using those {present} (re-export the file for the full take)"
            ),
            stacklevel=1,
        )


def audio_info(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """Return ``(sample_rate, channels, frames)`` of an audio file without reading it.

    A WAV file cut short inside its data counts the frames present, with a
    :class:`~fxclone.errors.FxcloneNotice` warning.
    """
    p = Path(path)
    _check_file(p)
    try:
        info = sf.info(str(p))
    except Exception as exc:
        raise FxcloneError(
            f"{p} is not a readable audio file ({_short(exc)}); give a wav, flac, mp3 or ogg file"
        ) from None
    _note_truncated(p)
    return int(info.samplerate), int(info.channels), int(info.frames)


def read_audio(
    path: str | os.PathLike[str],
    *,
    sample_rate: int | None = None,
    mono: bool = False,
    check: bool = True,
) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 ``(channels, samples)``.

    Args:
        path: wav, flac, mp3, ogg or aiff file, any sample rate and channel count.
        sample_rate: resample to this rate (Hz) if given; otherwise keep the file's rate.
        mono: average the channels down to one.
        check: refuse NaN/Inf samples and files with fewer than two samples.

    Returns:
        ``(audio, sample_rate)`` where audio is float32 ``(channels, samples)``.
    """
    p = Path(path)
    _check_file(p)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as exc:
        raise FxcloneError(
            f"{p} is not a readable audio file ({_short(exc)}); "
            "give a wav, flac, mp3 or ogg file, re-exported if it is truncated"
        ) from None
    _note_truncated(p)
    audio = np.ascontiguousarray(data.T)
    if check:
        check_audio(audio, p)
    if mono and audio.shape[0] > 1:
        audio = audio.mean(axis=0, keepdims=True)
    if sample_rate is not None and sample_rate != sr:
        audio = resample(audio, sr, sample_rate)
        sr = sample_rate
    return audio.astype(np.float32, copy=False), int(sr)


def check_audio(audio: np.ndarray, name: str | os.PathLike[str]) -> None:
    """Raise :class:`FxcloneError` if ``audio`` has too few samples or non-finite values."""
    if audio.ndim != 2 or audio.shape[1] < 2:
        n = audio.shape[-1] if audio.ndim else 0
        raise FxcloneError(f"{name} holds only {n} sample(s); give a recording of at least 0.1 s")
    if not np.all(np.isfinite(audio)):
        bad = int(np.sum(~np.isfinite(audio)))
        raise FxcloneError(
            f"{name} contains {bad} NaN/Inf sample(s); re-export it from your editor "
            "(the file is corrupt or was written by a failing plugin)"
        )


def write_audio(
    path: str | os.PathLike[str],
    audio: np.ndarray,
    sample_rate: int,
    *,
    subtype: str = "FLOAT",
) -> Path:
    """Write float audio ``(channels, samples)`` atomically (temporary file, then rename).

    Args:
        path: destination; the format follows the suffix (``.wav`` or ``.flac``).
        audio: ``(channels, samples)`` or ``(samples,)`` array.
        sample_rate: in Hz.
        subtype: soundfile subtype; ``"FLOAT"`` (32-bit float WAV) by default.
    """
    p = Path(path)
    arr = np.asarray(audio, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    if p.suffix.lower() == ".flac" and subtype == "FLOAT":
        subtype = "PCM_24"
    with (
        atomic_path(p) as tmp,
        open_writer(tmp, sample_rate, arr.shape[0], subtype, _format(p)) as f,
    ):
        f.write(arr.T)
    return p


_SFC_SET_ADD_PEAK_CHUNK = 0x1050


def open_writer(
    path: str | os.PathLike[str],
    sample_rate: int,
    channels: int,
    subtype: str = "FLOAT",
    file_format: str = "WAV",
) -> sf.SoundFile:
    """Open an audio file for writing, deterministically.

    libsndfile adds a PEAK chunk with a timestamp to float WAVs, so the same audio would give
    different bytes on every run; it is switched off here.
    """
    f = sf.SoundFile(
        str(path),
        "w",
        samplerate=int(sample_rate),
        channels=channels,
        subtype=subtype,
        format=file_format,
    )
    try:
        sf._snd.sf_command(f._file, _SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0)  # noqa: SLF001
    except AttributeError:  # a soundfile without these internals still writes valid files
        pass
    return f


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON atomically (keys sorted, so files diff cleanly)."""
    p = Path(path)
    with atomic_path(p) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    return p


def _format(p: Path) -> str:
    return {".flac": "FLAC", ".ogg": "OGG"}.get(p.suffix.lower(), "WAV")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary file is ``.NAME.XXXX.part`` in the destination folder, removed on any
    failure. A failed write (disk full, file too large, folder not writable) raises
    :class:`FxcloneError` naming ``path``. With ``durable`` the data is flushed to disk
    (fsync) before the rename and the folder after it, so a crash or power cut leaves either
    the previous file or the new one, never a partial one.
    """
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=parent)
    except OSError as exc:
        raise _folder_error(p, parent, exc) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes owner-only files; give the result the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        if durable:
            _fsync(tmp, os.O_RDONLY)
        os.replace(tmp, p)
    except (OSError, sf.SoundFileRuntimeError) as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(p, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        with contextlib.suppress(OSError):  # some file systems cannot sync a folder
            _fsync(parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_SF_SYSTEM_ERROR = 2  # libsndfile's code for a failed read/write system call


def write_error(path: Path, exc: BaseException) -> FxcloneError:
    """The one-line error for a write to ``path`` that failed with ``exc``."""
    code = getattr(exc, "errno", None)
    if code in _FULL or getattr(exc, "code", None) == _SF_SYSTEM_ERROR:
        return FxcloneError(
            f"could not write {path} (disk full or file too large); "
            "free some space or choose another folder"
        )
    reason = getattr(exc, "strerror", None) or _short(exc)
    return FxcloneError(f"could not write {path} ({reason}); choose a folder that can be written")


def _folder_error(p: Path, parent: Path, exc: OSError) -> FxcloneError:
    blocker = next((a for a in (parent, *parent.parents) if a.exists() and not a.is_dir()), None)
    if blocker is not None:
        reason = f"{blocker} is a file, not a folder"
    elif exc.errno in _FULL:
        return write_error(p, exc)
    elif exc.errno == errno.EROFS:
        reason = f"{parent} is on a read-only file system"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        reason = f"no permission to create files in {parent}"
    elif parent.is_dir():
        reason = f"{parent} does not accept new files"
    else:
        reason = exc.strerror or type(exc).__name__
    return FxcloneError(f"cannot write {p} ({reason}); choose a folder that can be written")


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample ``(channels, samples)`` audio with soxr (very high quality)."""
    if from_rate == to_rate:
        return audio
    import soxr

    out = soxr.resample(np.ascontiguousarray(audio.T), from_rate, to_rate, quality="VHQ")
    return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, audio.shape[0]).T)


def loudness_normalise(
    audio: np.ndarray, sample_rate: int, target_lufs: float = -18.0
) -> np.ndarray:
    """Scale audio to an integrated loudness (ITU-R BS.1770, pyloudnorm), peak-limited to 0.99."""
    import pyloudnorm as pyln

    meter = pyln.Meter(sample_rate, block_size=min(0.4, audio.shape[1] / sample_rate))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loudness = meter.integrated_loudness(audio.T.astype(np.float64))
    if not np.isfinite(loudness):
        return audio
    out = audio * np.float32(10 ** ((target_lufs - loudness) / 20))
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > 0.99:
        out = out * np.float32(0.99 / peak)
    return out.astype(np.float32)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1][:120] if text else type(exc).__name__
