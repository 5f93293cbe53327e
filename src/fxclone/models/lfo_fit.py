"""Fitting the oscillator model (:mod:`fxclone.models.lfo`) to one continuous dry/wet stream.

1. **Frames** (:mod:`fxclone.models.lfo_frames`). In frames of about 43 ms (hop 16 ms) the
   wet signal is correlated with the dry one at every lag up to the longest delay (``R``,
   which follows a tremolo's gain at lag 0) and deconvolved by it (``P``: each delayed path
   one sharp peak, wherever the sweep has taken it).
2. **Rate.** The modulation spectrum of those tracks and of the wet/dry transfer's
   magnitude at each partial (85-ms frames: a swept comb moves across the partials of
   narrowband material even where ``P`` shows no peak), each frequency's power over the
   median around it (lines stand out; the material's own modulation, read from the dry
   signal against itself, is discounted), peaks at the oscillator's rate or a harmonic; the
   peak is refined on the exact transform. It, half of it and the fundamental whose
   harmonics are most salient (and half of that) are the candidates.
3. **Voices.** For each candidate, the strongest peaks of ``P`` vote for the sweeps
   ``centre + depth sin(theta + phase)`` through them (a Hough transform), once over the
   frames one by one and once over the frames folded at the candidate rate (their spectra
   summed per oscillator phase before the division: on tones and chords one frame shows a
   path only as a ripple at its partials, a phase's hundred frames as one peak); the
   best-voted, refined by least squares on the peaks they explain, are placed on the
   waveform one by one (a coordinate search for the highest correlation with what the dry
   path and the voices before leave), then kept only if, polished with the whole model,
   they cut its error by a fifth: a delayed read of correlated material always explains a
   little. Of the two sets, the one that fits better is kept (the folded one is tried only
   where it differs from the other). Where the frames' peaks follow a cusped sawtooth
   ``1 - 2 |saw|^p`` (a triangle, p = 1, or a thru-zero flanger's folded parabola, p = 2)
   clearly better than any sine (:func:`~fxclone.models.lfo_frames.cusp_sweep`), one voice
   along it is tried as well.
4. **Gains.** Given the sweeps, the dry tap, each voice's unrolled feedback echoes and the
   output gain's harmonics are a bilinear least-squares problem, started from its linear
   relaxation. The rate is searched within +-0.1 % with the gains solved at each point; the
   fastest candidate that fits within twice the best error (at most 0.01 more) wins (a slower
   rate can mimic a faster one with harmonics).
5. **Refinement.** Adam on every parameter, on windows spread over the whole stream at known
   positions, for ``fit_seconds`` of wall time, keeping the best on fixed probe windows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import torch

from fxclone.models.closed_form import coordinate_search
from fxclone.models.lfo import LFOModel, read_delayed
from fxclone.models.lfo_frames import (
    cusp_sweep,
    find_voices,
    folded_response,
    frame_correlation,
    rate_candidates,
    sharpen_rate,
    transfer_tracks,
)


@torch.no_grad()
def _polish_voice(model: LFOModel, i: int, buffer: torch.Tensor, positions: torch.Tensor,
                  target: torch.Tensor) -> None:  # fmt: skip
    """Coordinate search of voice ``i``'s phase, centre and depth for the largest normalised
    correlation of its (one-echo) read with ``target``: the frames place a sweep within a
    few samples, the waveform within a fraction of one."""
    samples = (positions - model.history).double()
    ms = 1e3 / model.sample_rate

    def score() -> float:
        theta = model.theta(samples)
        d = model.sweep(theta[None], slice(i, i + 1))
        x = read_delayed(buffer, positions, d)[0, 0, 0]
        return float(torch.dot(x, target) / (torch.linalg.vector_norm(x) + 1e-12))

    # A phase error of e rad misplaces the read by up to e * depth samples, and broadband
    # material decorrelates within a sample or two: the phase is first scanned finely enough
    # to land within an eighth of a sample (a coarser grid can miss the peak altogether).
    depth = float(model.depth_ms[i]) / ms
    points = int(np.clip(12.8 * depth, 17, 513)) | 1
    coordinate_search([(model.voice_phase, i, 0.8)], score, rounds=1, points=points)
    params = [(model.voice_phase, i, 0.8 / points), (model.delay_ms, i, 3 * ms),
              (model.depth_ms, i, 3 * ms)]  # fmt: skip
    coordinate_search(params, score, rounds=4)


def _residual(model: LFOModel, buffer: torch.Tensor, positions: torch.Tensor,
              target: torch.Tensor, voices: int) -> torch.Tensor:  # fmt: skip
    """``target`` less its least-squares fit by the dry tap and the first ``voices`` voices'
    first echoes."""
    columns = [buffer[0, 0, positions]]
    if voices:
        theta = model.theta((positions - model.history).double())
        d = model.sweep(theta[None], slice(0, voices))
        columns += list(read_delayed(buffer, positions, d)[0, 0])
    basis = torch.stack(columns, 1).double()
    fit = basis @ torch.linalg.lstsq(basis, target.double()[:, None]).solution[:, 0]
    return (target.double() - fit).float()


@torch.no_grad()
def _polish_with(
    model: LFOModel,
    buffer: torch.Tensor,
    positions: torch.Tensor,
    target: torch.Tensor,
    pad: int,
    active: Sequence[int],
    i: int,
) -> float:
    """Voice ``i``'s sweep again, now for the lowest error of the whole model (the ``active``
    voices and ``i``, gains solved afresh at each step: it was placed alone against a residue);
    returns that error."""
    ms = 1e3 / model.sample_rate
    voices = [*active, i]

    def score() -> float:
        return -_solved_esr(model, buffer, positions, target, pad, voices)

    params = [(model.voice_phase, i, 0.3), (model.delay_ms, i, 2 * ms),
              (model.depth_ms, i, 2 * ms)]  # fmt: skip
    coordinate_search(params, score, rounds=2, points=9)
    return -score()


@torch.no_grad()
def _polish_rate(model: LFOModel, buffer: torch.Tensor, positions: torch.Tensor,
                 target: torch.Tensor, pad: int, active: Sequence[int]) -> None:  # fmt: skip
    """Search the rate within +-1 % (the frames' estimate; a 0.1 % error drifts a whole cycle
    in 1,000) for the lowest error with the gains solved afresh at each rate."""

    def score() -> float:
        return -_solved_esr(model, buffer, positions, target, pad, active)

    coordinate_search([(model.log_rate.view(1), 0, 1e-2)], score, rounds=6)
    solve_gains(model, buffer, positions, target, pad, active)


def _windows(total: int, history: int, count: int, length: int, rng: np.random.Generator):
    starts = rng.integers(history, max(history + 1, total - length), count)
    return torch.from_numpy(np.concatenate([np.arange(s, s + length) for s in starts]))


@torch.no_grad()
def solve_gains(
    model: LFOModel,
    buffer: torch.Tensor,
    positions: torch.Tensor,
    target: torch.Tensor,
    pad: int,
    active: Sequence[int] | None = None,
) -> None:
    """Least squares for the dry tap, the gain and feedback of each ``active`` voice (all by
    default; the others are silenced) and the output gain's harmonics, given the oscillator
    and the sweeps."""
    samples = (positions - pad).double()
    theta = model.theta(samples)
    v, echoes = model.voice_gain.numel(), model.config.echoes
    on = list(range(v)) if active is None else list(active)
    columns = [buffer[0, 0, positions]]
    if on:
        for back in model.echo_delays(theta):
            columns += list(read_delayed(buffer, positions, back)[0, 0, on])
    base_columns = torch.stack(columns, 1).double()  # (P, 1 + v * echoes)
    y = target.double()
    h = model.gain_shape.shape[0]
    orders = torch.arange(1, h + 1, dtype=torch.float64)
    trig = torch.cat([torch.cos(theta.double()[:, None] * orders),
                      torch.sin(theta.double()[:, None] * orders)], 1)  # fmt: skip
    # y = (sum_j beta_j X_j) (1 + trig alpha) is bilinear. Start from the linear fit in which
    # the dry tap and each voice's first echo carry their own modulation (columns X_j trig),
    # read alpha off the strongest of them, then alternate.
    lead = base_columns[:, : 1 + len(on)]
    joint = torch.cat([base_columns, (lead[:, :, None] * trig[:, None, :]).flatten(1)], 1)
    solution = torch.linalg.lstsq(joint, y[:, None]).solution[:, 0]
    beta = solution[: base_columns.shape[1]]
    gamma = solution[base_columns.shape[1] :].view(lead.shape[1], 2 * h)
    k = int(torch.argmax(beta[: lead.shape[1]].abs()))
    alpha = gamma[k] / beta[k] if abs(float(beta[k])) > 1e-9 else torch.zeros(2 * h)
    for _ in range(2):  # alternating: the taps given the gain, the gain given the taps
        gain = 1.0 + trig @ alpha
        beta = torch.linalg.lstsq(base_columns * gain[:, None], y[:, None]).solution[:, 0]
        base = base_columns @ beta
        alpha = torch.linalg.lstsq(trig * base[:, None], (y - base)[:, None]).solution[:, 0]
    model.dry_gain.fill_(float(beta[0]))
    model.gain_shape.copy_(torch.stack([alpha[:h], alpha[h:]], 1).float())
    model.voice_gain.zero_()
    model.feedback.zero_()
    for j, i in enumerate(on):
        first = float(beta[1 + j])  # columns: dry, then echo by echo, active voice by voice
        second = float(beta[1 + len(on) + j]) if echoes > 1 else 0.0
        model.voice_gain[i] = first
        model.feedback[i] = float(np.clip(second / first, -0.95, 0.95)) if abs(first) > 1e-4 else 0


def _solved_esr(model: LFOModel, buffer: torch.Tensor, positions: torch.Tensor,
                target: torch.Tensor, pad: int, active: Sequence[int]) -> float:  # fmt: skip
    solve_gains(model, buffer, positions, target, pad, active)
    return float(_esr(model, buffer, positions, target, pad))


def _esr(model: LFOModel, buffer: torch.Tensor, positions: torch.Tensor,
         target: torch.Tensor, pad: int) -> torch.Tensor:  # fmt: skip
    y = model.render(buffer, positions, (positions - pad).double())[0, 0]
    return torch.sum((y - target) ** 2) / torch.sum(target**2).clamp_min(1e-12)


def _same_sweeps(
    these: Sequence[tuple[float, float, float, float]],
    those: Sequence[tuple[float, float, float, float]],
) -> bool:
    """Whether every sweep of ``these`` is one of ``those`` (centre and depth within two
    samples, phase within 0.1 rad)."""
    return all(
        any(abs(c - c2) <= 2.0 and abs(d - d2) <= 2.0
            and abs(math.remainder(p - p2, 2.0 * math.pi)) <= 0.1 for c2, d2, p2, _ in those)
        for c, d, p, _ in these
    )  # fmt: skip


@torch.no_grad()
def _fit_voices(
    model: LFOModel,
    rate: float,
    voices: Sequence[tuple[float, float, float, float]],
    buffer: torch.Tensor,
    search: torch.Tensor,
    probe: torch.Tensor,
    target: torch.Tensor,
    pad: int,
    power: float = 0.0,
) -> tuple[float, float, dict[str, torch.Tensor]]:
    """The model at ``rate`` with the swept ``voices`` (samples, samples, rad, votes; along
    a sine, or the cusped sawtooth of ``power``) placed on the waveform and kept while they
    help, gains solved: ``(probe ESR, rate, state)``."""
    sr = model.sample_rate
    model.sweep_power.fill_(power)
    model.log_rate.fill_(math.log(rate))
    model.phase.zero_()
    model.feedback.zero_()
    model.delay_shape.zero_()
    for i in range(model.voice_gain.numel()):
        centre, depth, phase, _ = voices[i] if i < len(voices) else (1.0, 0.0, 0.0, 0)
        model.delay_ms[i] = centre / sr * 1e3
        model.depth_ms[i] = depth / sr * 1e3
        model.voice_phase[i] = phase
    y = target[search]
    if power > 0.0:
        # A cusped sweep's voice stays where the frames put it: on tones and chords the
        # waveform searches below pull it a sample or two off (the probe's error rises from
        # 0.07 to 0.27 on mda ThruZero), and the rate and phase trade along a narrow valley
        # that the refinement follows better than a coordinate search.
        solve_gains(model, buffer, search, y, pad, list(range(len(voices))))
        esr = float(_esr(model, buffer, probe, target[probe], pad))
        return esr, rate, {k: v.clone() for k, v in model.state_dict().items()}
    # each voice is placed against what the dry path and the voices before it leave
    for i in range(len(voices)):
        _polish_voice(model, i, buffer, search, _residual(model, buffer, search, y, i))
    # Voices join one at a time while each cuts the error clearly: a delayed read of
    # correlated material always explains a little (a tremolo has no voice at all).
    active: list[int] = []
    error = _solved_esr(model, buffer, search, y, pad, active)
    for i in range(len(voices)):
        trial = _polish_with(model, buffer, search, y, pad, active, i)
        if trial < 0.8 * error and error - trial > 1e-5:
            active, error = [*active, i], trial
    _polish_rate(model, buffer, search, y, pad, active)
    esr = float(_esr(model, buffer, probe, target[probe], pad))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    return esr, float(torch.exp(model.log_rate)), state


def fit_lfo(model: LFOModel, dry: np.ndarray, wet: np.ndarray, seed: int = 0) -> float:
    """Fit ``model`` in place to mono float ``dry``/``wet`` streams; returns its ESR on
    windows of the stream."""
    sr = model.sample_rate
    max_lag = int(min(model.max_delay, dry.size // 4))
    dry64, wet64 = dry.astype(np.float64), wet.astype(np.float64)
    times, r, p, valid = frame_correlation(dry64, wet64, sr, max_lag)
    own = frame_correlation(dry64, dry64, sr, max_lag)[1]
    pad = model.history
    buffer = torch.from_numpy(np.concatenate([np.zeros(pad), dry]).astype(np.float32))[None, None]
    target_all = torch.from_numpy(np.concatenate([np.zeros(pad), wet]).astype(np.float32))
    rng = np.random.default_rng(seed)
    probe = _windows(buffer.shape[-1], pad, 64, 1024, rng)  # scores the candidates
    search = _windows(buffer.shape[-1], pad, 32, 512, rng)  # (a quarter of the work)
    fits: list[tuple[float, float, dict[str, torch.Tensor]]] = []
    with torch.no_grad():
        transfer = transfer_tracks(dry64, wet64, sr)
        for rate in rate_candidates(times, r, p, valid, own, transfer):
            # frames of an eighth of a cycle follow the sweep (at most 85 ms, at least 5 ms)
            frame_s = min(0.085, max(0.005, 0.125 / rate))
            times_v, _, p_v, valid_v = frame_correlation(dry64, wet64, sr, max_lag, frame_s)
            count = model.voice_gain.numel()
            voices = find_voices(times_v, p_v, valid_v, rate, count, sr)
            sharp = rate
            if voices:  # the strongest sweep pins the rate down; the voices again at it
                sharp = sharpen_rate(times_v, p_v, valid_v, rate, voices[0], sr)
                voices = find_voices(times_v, p_v, valid_v, sharp, count, sr)
            # the same from the frames folded at the rate (narrowband material: one frame's
            # response is a ripple, the phase's many frames' a peak)
            fold_t, fold_p = folded_response(dry64, wet64, sr, max_lag, rate, min(frame_s, 0.043))
            folded = find_voices(fold_t, fold_p, np.ones(fold_t.size, bool), rate, count, sr)
            trials = [(sharp, voices, 0.0)]
            if not _same_sweeps(folded, voices):  # (broadband material: they agree)
                trials.append((rate, folded, 0.0))
            cusp = cusp_sweep(times_v, p_v, valid_v, rate) if count else None
            if cusp is not None:  # a triangle or a thru-zero sweep, clearly not a sine
                centre, depth, phase, power, at = cusp
                trials.append((at, [(centre, depth, phase, 0)], power))
            tried = [_fit_voices(model, at, found, buffer, search, probe, target_all, pad, power)
                     for at, found, power in trials]  # fmt: skip
            fits.append(min(tried, key=lambda f: f[0]))

    # The fastest rate that fits about as well as the best: a slower one can mimic it with
    # harmonics, never the other way round. "About as well" is twice the error while that is
    # small, a hundredth more where the best fit is still coarse (a rate with no sweep at all
    # explains a chorus' dry part, half its energy, about as well as the right one).
    least = min(e for e, _, _ in fits)
    near = least + min(least, 0.01) + 1e-5
    _, _, chosen = max((f for f in fits if f[0] <= near), key=lambda f: f[1])
    model.load_state_dict(chosen)
    return refine(model, buffer, target_all, pad, model.config.fit_seconds, rng)


def refine(model: LFOModel, buffer: torch.Tensor, target: torch.Tensor, pad: int,
           seconds: float, rng: np.random.Generator) -> float:  # fmt: skip
    """Adam on every parameter, on fresh windows each step, for ``seconds`` of wall time;
    keeps the best parameters seen on a fixed set of probe windows."""
    probe = _windows(buffer.shape[-1], pad, 64, 1024, rng)
    slow = {"log_rate": 2e-6, "phase": 1e-3, "voice_phase": 1e-3}
    groups = [{"params": [p], "lr": slow.get(name, 1e-3)} for name, p in model.named_parameters()]
    opt = torch.optim.Adam(groups)
    with torch.no_grad():
        best_esr = float(_esr(model, buffer, probe, target[probe], pad))
    best = {k: v.clone() for k, v in model.state_dict().items()}
    deadline = time.monotonic() + seconds
    step = 0
    while time.monotonic() < deadline:
        positions = _windows(buffer.shape[-1], pad, 16, 2048, rng)
        loss = _esr(model, buffer, positions, target[positions], pad)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 25 == 0:
            with torch.no_grad():
                esr = float(_esr(model, buffer, probe, target[probe], pad))
            if esr < best_esr:
                best_esr, best = esr, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best)
    return best_esr
