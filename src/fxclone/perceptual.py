"""Perceptual and loudness distances between a target and an estimate: log-mel, MFCC,
modulation spectrum and integrated loudness (ITU-R BS.1770 through pyloudnorm).

Same conventions as :mod:`fxclone.metrics` (``target, estimate`` of one shape, a Python
``float`` back); :func:`fxclone.metrics.compute_metrics` adds these with ``extended=True``.
They read at most the first ``EXTENDED_MAX_SECONDS`` of audio.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from fxclone.errors import FxcloneError
from fxclone.metrics import _ENERGY_FLOOR, _pair

# The extended (perceptual) metrics read at most this much audio from the start, which keeps
# them to about a second on 30 s of 48 kHz stereo however long the file is.
EXTENDED_MAX_SECONDS = 60.0
# Integrated loudness of silence (or audio whose every block is gated away) is -inf LUFS;
# pyloudnorm's value is clamped here so two silent signals differ by 0 LU, not NaN.
LOUDNESS_FLOOR_LUFS = -200.0
# pyloudnorm's gating blocks are 400 ms; shorter audio is repeated up to this length.
_LOUDNESS_MIN_SECONDS = 0.4

# Log-mel analysis shared by mel_distance and mfcc_cosine_distance.
_MEL_N_FFT = 2048
_MEL_HOP = 512
N_MELS = 128
N_MFCC = 20
# Power below this (re. full scale squared) reads as -100 dB, so silence has a finite log.
_MEL_AMIN = 1e-10

# Modulation spectrum: band envelopes sampled at this rate (hop = sample_rate / rate samples),
# in this many mel bands spanning the thesis' gammatone range (26-6950 Hz), analysed in octave
# modulation bands 0.5-1, 1-2, ..., 64-128 Hz.
_MOD_ENVELOPE_RATE_HZ = 400.0
_MOD_N_BANDS = 12
_MOD_FMIN_HZ = 26.0
_MOD_FMAX_HZ = 6950.0
MODULATION_BAND_EDGES_HZ = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
# Modulation energy below this fraction of the envelope's DC energy (-80 dB) counts as none.
_MOD_FLOOR = 1e-8
# A band whose DC energy is this far (-60 dB) below the loudest band's is treated as silent.
_MOD_QUIET_BAND = 1e-6


def _check_rate(sample_rate: int, metric: str) -> int:
    if not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise FxcloneError(
            f"{metric} needs a positive whole sample rate in Hz, got {sample_rate!r}"
        )
    return int(sample_rate)


def integrated_loudness_lufs(audio: np.ndarray, sample_rate: int) -> float:
    """ITU-R BS.1770-4 integrated loudness in LUFS (pyloudnorm), clamped at -200 LUFS.

    Args:
        audio: float64 ``(channels, samples)``; at most 5 channels (BS.1770 weights).
        sample_rate: in Hz.
    """
    import pyloudnorm

    x = audio
    min_samples = math.ceil(_LOUDNESS_MIN_SECONDS * sample_rate)
    if x.shape[1] < min_samples:
        # Repeating a short clip keeps its loudness; padding with silence would lower it.
        x = np.tile(x, (1, math.ceil(min_samples / x.shape[1])))
    with warnings.catch_warnings():
        # pyloudnorm warns when audio is outside [-1, 1]; the loudness is still well defined.
        warnings.simplefilter("ignore")
        lufs = pyloudnorm.Meter(sample_rate).integrated_loudness(x.T)
    return max(float(lufs), LOUDNESS_FLOOR_LUFS) if math.isfinite(lufs) else LOUDNESS_FLOOR_LUFS


def loudness_difference_lufs(target: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """Signed integrated loudness difference, estimate minus target, in LU.

    Positive means the estimate is louder. Loudness is ITU-R BS.1770-4 integrated loudness
    (K-weighting, 400 ms blocks, -70 LUFS absolute and -10 LU relative gates) from pyloudnorm;
    each side is clamped at -200 LUFS so silence is finite. Audio shorter than 400 ms is
    repeated up to that length; longer than 60 s, only the first 60 s are measured. A pure gain
    ``g`` gives ``20 log10 g`` (exactly, unless a gate moves).

    Args:
        target: ``(channels, samples)`` or ``(samples,)`` float audio, at most 5 channels.
        estimate: same shape as ``target``.
        sample_rate: in Hz.
    """
    t, e, rate = _extended_pair(target, estimate, sample_rate, "loudness_difference_lufs")
    if t.shape[0] > 5:
        raise FxcloneError(
            f"loudness needs at most 5 channels (ITU-R BS.1770), got {t.shape[0]}; "
            "mix down to stereo first"
        )
    return integrated_loudness_lufs(e, rate) - integrated_loudness_lufs(t, rate)


def _log_mel_db(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Log-mel power spectrogram in dB re. full scale, ``(channels, 128, frames)``.

    librosa, centred Hann STFT of 2048 samples with hop 512, power 2, 128 Slaney mel bands from
    0 Hz to Nyquist, then ``10 log10(max(power, 1e-10))`` with a fixed reference of 1 (so a
    gain change shows) and no top-dB clipping.
    """
    import librosa

    x = audio.astype(np.float32)
    n_fft = _MEL_N_FFT
    if x.shape[1] < n_fft:
        # A centred STFT needs n_fft // 2 samples either side; pad so short clips still work.
        x = np.pad(x, ((0, 0), (0, n_fft - x.shape[1])))
    mel = librosa.feature.melspectrogram(
        y=x, sr=sample_rate, n_fft=n_fft, hop_length=_MEL_HOP, n_mels=N_MELS, power=2.0
    )
    return 10.0 * np.log10(np.maximum(mel.astype(np.float64), _MEL_AMIN))


def _mel_distance_from(t_db: np.ndarray, e_db: np.ndarray) -> float:
    return float(np.mean(np.abs(t_db - e_db)))


def _mfcc_cosine_from(t_db: np.ndarray, e_db: np.ndarray) -> float:
    import scipy.fft

    # MFCCs as librosa computes them from a dB mel spectrogram: orthonormal DCT-II over bands.
    t_c = scipy.fft.dct(t_db, type=2, axis=-2, norm="ortho")[..., :N_MFCC, :]
    e_c = scipy.fft.dct(e_db, type=2, axis=-2, norm="ortho")[..., :N_MFCC, :]
    dot = np.sum(t_c * e_c, axis=-2)
    norms = np.linalg.norm(t_c, axis=-2) * np.linalg.norm(e_c, axis=-2)
    # A zero vector (only possible for 0 dB power everywhere) counts as similar to itself.
    cosine = np.where(norms > 0, dot / np.maximum(norms, 1e-300), 1.0)
    return float(1.0 - np.mean(cosine))


def _extended_pair(
    target: np.ndarray, estimate: np.ndarray, sample_rate: int, metric: str
) -> tuple[np.ndarray, np.ndarray, int]:
    t, e = _pair(target, estimate)
    rate = _check_rate(sample_rate, metric)
    n = int(EXTENDED_MAX_SECONDS * rate)
    return t[:, :n], e[:, :n], rate


def mel_distance(target: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """Mean absolute difference of log-mel spectrograms, in dB.

    Both signals: librosa mel power spectrogram (Hann STFT 2048 / hop 512, 128 Slaney mel bands
    up to Nyquist), ``10 log10`` re. full scale with power floored at 1e-10 (-100 dB); the mean
    of ``|target_db - estimate_db|`` over channels, bands and frames. A gain ``g`` gives
    ``|20 log10 g|`` dB wherever both are above the floor. Reads at most the first 60 s.

    Args:
        target: ``(channels, samples)`` or ``(samples,)`` float audio.
        estimate: same shape as ``target``.
        sample_rate: in Hz.
    """
    t, e, rate = _extended_pair(target, estimate, sample_rate, "mel_distance")
    return _mel_distance_from(_log_mel_db(t, rate), _log_mel_db(e, rate))


def mfcc_cosine_distance(target: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """One minus the mean cosine similarity of MFCC frame vectors; unitless, 0 to 2.

    MFCCs: the first 20 coefficients (c0 included, so overall level counts a little) of the
    orthonormal DCT-II of the dB log-mel spectrogram described in :func:`mel_distance`. The
    cosine similarity is taken between the target's and estimate's 20-coefficient vector in
    each frame and channel, then averaged. (The thesis code instead compares each coefficient's
    trajectory over time, with 13 coefficients of 40 bands; this per-frame form follows its
    text.) Reads at most the first 60 s.

    Args:
        target: ``(channels, samples)`` or ``(samples,)`` float audio.
        estimate: same shape as ``target``.
        sample_rate: in Hz.
    """
    t, e, rate = _extended_pair(target, estimate, sample_rate, "mfcc_cosine_distance")
    return _mfcc_cosine_from(_log_mel_db(t, rate), _log_mel_db(e, rate))


def modulation_spectrum(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Octave-band modulation spectrum in dB re. each band's DC, ``(12 bands, 8 mod bands)``.

    1. Mix to mono; mel power spectrogram (librosa, Hann STFT of 4 hops, hop =
       ``sample_rate / 400`` so envelopes are sampled at about 400 Hz, 12 Slaney mel bands
       from 26 to 6950 Hz, the thesis' gammatone range).
    2. Envelope of each band = sqrt of its power (an amplitude, like a Hilbert magnitude).
    3. Power spectrum of each envelope: ``|FFT(hann * envelope)|**2``.
    4. Sum it over octave modulation bands 0.5-1, 1-2, ..., 64-128 Hz and divide by the power at
       DC (the envelope's mean squared, as the thesis code's ``msed`` does), so the values are
       modulation depths independent of level; ``10 log10``, floored at -80 dB. Bands whose
       DC power is more than 60 dB below the loudest band's read -80 dB throughout.

    Args:
        audio: float ``(channels, samples)``.
        sample_rate: in Hz.
    """
    import librosa

    mono = audio.mean(axis=0).astype(np.float32)
    hop = max(1, round(sample_rate / _MOD_ENVELOPE_RATE_HZ))
    n_fft = 4 * hop
    if mono.size < n_fft:
        mono = np.pad(mono, (0, n_fft - mono.size))
    fmax = min(_MOD_FMAX_HZ, sample_rate / 2)
    mel = librosa.feature.melspectrogram(
        y=mono,
        sr=sample_rate,
        n_fft=n_fft,
        hop_length=hop,
        n_mels=_MOD_N_BANDS,
        fmin=_MOD_FMIN_HZ,
        fmax=fmax,
        power=2.0,
    ).astype(np.float64)
    envelope = np.sqrt(mel)
    frames = envelope.shape[1]
    spectrum = np.abs(np.fft.rfft(envelope * np.hanning(frames), axis=1)) ** 2
    freqs_hz = np.fft.rfftfreq(frames, d=hop / sample_rate)
    dc = np.maximum(spectrum[:, :1], _ENERGY_FLOOR)
    edges = MODULATION_BAND_EDGES_HZ
    bands = np.stack(
        [
            spectrum[:, (freqs_hz >= lo) & (freqs_hz < hi)].sum(axis=1)
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        ],
        axis=1,
    )
    depth = bands / dc
    # A band far below the loudest holds only window leakage, whose ripple would read as
    # deep modulation (a steady sine's far bands flutter at twice its frequency, aliased).
    depth[dc[:, 0] < _MOD_QUIET_BAND * dc.max()] = 0.0
    return 10.0 * np.log10(np.maximum(depth, _MOD_FLOOR))


def modulation_spectrum_distance(
    target: np.ndarray, estimate: np.ndarray, sample_rate: int
) -> float:
    """Mean absolute difference of octave-band modulation spectra, in dB.

    The modulation spectra are those of :func:`modulation_spectrum` (12 mel bands x 8 octave
    modulation bands from 0.5 to 128 Hz, each in dB re. the band envelope's DC, floored at
    -80 dB); the distance is the mean of ``|target - estimate|`` over all 96 cells. It follows
    the thesis (McDermott & Simoncelli-style band envelopes, then their modulation energy) with
    mel bands standing in for the gammatone filterbank and octave bands for the modulation
    filterbank. A steady tone scores near -80 dB in every cell and a 4 Hz tremolo raises the
    4-8 Hz cells, so it is sensitive to level changes over time (tremolo, compression pumping,
    envelope followers) but not to steady gain or EQ. Reads at most the first 60 s.

    Args:
        target: ``(channels, samples)`` or ``(samples,)`` float audio.
        estimate: same shape as ``target``.
        sample_rate: in Hz.
    """
    t, e, rate = _extended_pair(target, estimate, sample_rate, "modulation_spectrum_distance")
    return float(np.mean(np.abs(modulation_spectrum(t, rate) - modulation_spectrum(e, rate))))
