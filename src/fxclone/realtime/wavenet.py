"""Compiled streaming kernels for :class:`fxclone.models.wavenet.WaveNet`.

Two implementations read the same weight tables. The native one (C, see
:mod:`fxclone.realtime._csource`, built by :mod:`fxclone.realtime.native`) computes a whole
layer for a vector of samples with the layer's channels in vector registers. The numba one
(used where no C compiler works) computes the model tile by tile (at most ``T`` samples of
every stream at once): each layer's dilated convolution, input mixer, 1x1 and head are
small matrix products over the tile (:func:`fxclone.realtime._gemm.gemm`, vectorised
along time).

Each layer keeps its input history in a linear buffer of ``pad + SPAN`` samples per
channel: a tile's layer input is written after the history, the dilated taps are read in
place at fixed offsets, and only once every ``SPAN`` samples are the last ``pad`` samples
of each row moved back to the front (an amortised copy, no per-sample ring arithmetic).

Knob values are constant within a stream, so their mixer contribution is folded into each
layer's bias (per stream) when the kernel is built or the knobs change. A model with knob
FiLM gets its scales folded into the convolution, mixer and head weights as well; those are
shared by all streams, so such a kernel needs every stream at the same knob values.
"""

from __future__ import annotations

import ctypes

import numpy as np
import torch
from numba import njit

from fxclone.models.wavenet import WaveNet, _Layer, film_scale_mask
from fxclone.realtime import native
from fxclone.realtime._gemm import T, copy, fill, gemm
from fxclone.realtime._math import (
    ACT_HARDTANH,
    ACT_RELU,
    ACT_TANH,
    ACTIVATION_CODES,
    sigmoid,
    tanh,
)

_MAX_ROWS = 256  # channels (or gated mid channels) a tile buffer holds
_NATIVE_MAX_CHANNELS = 32
_IO_BLOCK = 4096  # the native kernel's fixed input/output buffers, samples per stream
SPAN = 2048  # samples written after the history before the buffers are shifted

# Columns of the per-layer table.
L_C, L_MID, L_K, L_D, L_ACT, L_GATED, L_W, L_MX, L_W1, L_B1, L_HIST, L_PAD, L_CB, L_CO = range(14)
# Columns of the per-array table.
A_CIN, A_C, A_HEAD, A_FIRST, A_N, A_R, A_H, A_HB = range(8)


@njit(fastmath=True, cache=True, error_model="numpy")
def _shift_history(hist, lay, batch, used):
    """Move each row's last ``pad`` samples to its front (the linear buffers are full)."""
    for li in range(lay.shape[0]):
        pad = lay[li, L_PAD]
        row = pad + SPAN
        for r in range(batch * lay[li, L_C]):
            copy(hist, lay[li, L_HIST] + r * row, hist, lay[li, L_HIST] + r * row + used, pad)


@njit(fastmath=True, cache=True, error_model="numpy")
def _layer(hist, w, cb, lay, coff, li, hb, n, xs, cin, Z, A, S, P):
    """One layer on one stream's tile: skip sum ``S += a``; residual output into ``P``."""
    c, mid, k = lay[li, L_C], lay[li, L_MID], lay[li, L_K]
    row = lay[li, L_PAD] + SPAN
    for o in range(mid):
        fill(Z, o * T, cb[lay[li, L_CB] + o], n)
    gemm(Z, 0, w, lay[li, L_MX], cin, xs, 0, coff, 0, mid, cin, n)  # mixer(dry input)
    gemm(Z, 0, w, lay[li, L_W], c * k, hist, hb, coff, lay[li, L_CO], mid, c * k, n)  # conv
    act = lay[li, L_ACT]
    for o in range(c):
        zr = Z[o * T :]
        ar = A[o * T :]
        if act == ACT_TANH:
            for t in range(n):
                ar[t] = tanh(zr[t])
        elif act == ACT_RELU:
            for t in range(n):
                ar[t] = max(zr[t], np.float32(0.0))
        elif act == ACT_HARDTANH:
            for t in range(n):
                ar[t] = min(max(zr[t], np.float32(-1.0)), np.float32(1.0))
        else:
            for t in range(n):
                ar[t] = sigmoid(zr[t])
        if lay[li, L_GATED]:
            gr = Z[(c + o) * T :]
            for t in range(n):
                ar[t] = ar[t] * sigmoid(gr[t])
        sr = S[o * T :]
        for t in range(n):
            sr[t] += ar[t]
    for o in range(c):  # residual: the layer input (its last tap) + bias + 1x1(a)
        b1 = w[lay[li, L_B1] + o]
        pr = P[o * T :]
        xr = hist[hb + o * row + lay[li, L_PAD] :]
        for t in range(n):
            pr[t] = xr[t] + b1
    gemm(P, 0, w, lay[li, L_W1], c, A, 0, coff, 0, c, c, n)


@njit(fastmath=True, cache=True, error_model="numpy")
def _run(x, y, w, bias, lay, arr, coff, hist, used, scale, xs, Z, A, S, P, H):
    """Process ``x`` (batch, channels, samples) into ``y``; returns the new ``used`` count."""
    batch, cin0, total = x.shape
    t0 = 0
    while t0 < total:
        n = min(T, total - t0)
        if used + n > SPAN:
            _shift_history(hist, lay, batch, used)
            used = 0
        for b in range(batch):
            cb = bias[b]
            for ci in range(cin0):
                copy(xs, ci * T, x[b, ci], t0, n)
            for ai in range(arr.shape[0]):
                c, first, last = arr[ai, A_C], arr[ai, A_FIRST], arr[ai, A_FIRST] + arr[ai, A_N]
                # the array input (dry audio or the previous array's output) rechannelled
                src = xs if ai == 0 else P
                for o in range(c):
                    fill(Z, o * T, np.float32(0.0), n)
                gemm(Z, 0, w, arr[ai, A_R], arr[ai, A_CIN], src, 0, coff, 0, c, arr[ai, A_CIN], n)
                for o in range(c):
                    if ai == 0:
                        fill(S, o * T, np.float32(0.0), n)
                    else:
                        copy(S, o * T, H, o * T, n)
                nrow = lay[first, L_PAD] + SPAN
                nhb = lay[first, L_HIST] + b * c * nrow + used
                for o in range(c):
                    copy(hist, nhb + o * nrow + lay[first, L_PAD], Z, o * T, n)
                for li in range(first, last):
                    hb = nhb
                    _layer(hist, w, cb, lay, coff, li, hb, n, xs, cin0, Z, A, S, P)
                    if li + 1 < last:  # the residual output is the next layer's input
                        nrow = lay[li + 1, L_PAD] + SPAN
                        nhb = lay[li + 1, L_HIST] + b * c * nrow + used
                        for o in range(c):
                            copy(hist, nhb + o * nrow + lay[li + 1, L_PAD], P, o * T, n)
                hs = arr[ai, A_HEAD]
                for o in range(hs):
                    hbias = w[arr[ai, A_HB] + o] if arr[ai, A_HB] >= 0 else np.float32(0.0)
                    fill(H, o * T, hbias, n)
                gemm(H, 0, w, arr[ai, A_H], c, S, 0, coff, 0, hs, c, n)
            for o in range(y.shape[1]):
                yr = y[b, o, t0:]
                hr = H[o * T :]
                for t in range(n):
                    yr[t] = scale * hr[t]
        used += n
        t0 += n
    return used


class WaveNetKernel:
    """Streams ``batch`` independent streams through a :class:`WaveNet`'s weights.

    ``process`` takes float32 ``(batch, channels, samples)`` blocks of any size; the result
    equals the model's ``step`` from its initial state over the same blocks.
    """

    def __init__(
        self, model: WaveNet, batch: int, knobs: np.ndarray, backend: str = "auto"
    ) -> None:
        self.batch = int(batch)
        self.channels = model.channels
        self.scale = np.float32(model.head_scale)
        weights: list[np.ndarray] = []
        size = 0

        def put(t: torch.Tensor) -> int:
            nonlocal size
            arr = t.detach().to(torch.float32).reshape(-1).cpu().numpy()
            weights.append(arr)
            size += arr.size
            return size - arr.size

        lay_rows: list[list[int]] = []
        arr_rows: list[list[int]] = []
        self._conv_bias: list[tuple[int, np.ndarray, np.ndarray]] = []
        # FiLM folding: (offset, original rows) of the weights whose rows FiLM scales.
        self._film_rows: list[list[tuple[int, np.ndarray]]] = []
        hist = cb = 0
        coff = [j * T for j in range(_MAX_ROWS)]  # columns of a tile buffer
        cin = model.channels
        for array in model._array_list:
            c = array.rechannel.out_channels
            head = array.head_rechannel
            hb = put(head.bias) if head.bias is not None else -1
            rw, hw = put(array.rechannel.weight), put(head.weight)
            arr_rows.append([cin, c, head.out_channels, len(lay_rows), len(array.layers_list),
                             rw, hw, hb])  # fmt: skip
            for layer in array.layers_list:
                mid, _, k = layer.conv.weight.shape
                mixer = layer.input_mixer.weight.detach()[:, :, 0].double()
                d = layer.conv.dilation[0]
                w_off, mx_off = put(layer.conv.weight), put(mixer[:, : model.channels])
                lay_rows.append(
                    [c, mid, k, d, ACTIVATION_CODES[_act_name(layer)], int(layer.gated),
                     w_off, mx_off, put(layer.layer1x1.weight), put(_bias(layer.layer1x1)),
                     hist, layer.pad, cb, len(coff)]
                )  # fmt: skip
                row = layer.pad + SPAN  # column i*k + kk of the conv reads channel i, tap kk
                coff.extend(i * row + kk * d for i in range(c) for kk in range(k))
                bias = _bias(layer.conv).double().numpy()
                self._conv_bias.append((cb, bias, mixer[:, model.channels :].numpy()))
                self._film_rows.append([(w_off, _rows(layer.conv.weight, mid)),
                                        (mx_off, mixer[:, : model.channels].numpy())])  # fmt: skip
                hist += self.batch * c * (layer.pad + SPAN)
                cb += mid
            cin = c
        last = model._array_list[-1].head_rechannel
        self._film_out = [(hw, _rows(last.weight, model.channels))]
        if hb >= 0:
            assert last.bias is not None
            self._film_out.append((hb, _rows(last.bias, model.channels)))
        self._film = _film_weights(model)
        self._film_log = model.film_log
        self._is_scale = np.array(film_scale_mask(model._film_sizes))
        self.w = np.concatenate(weights).astype(np.float32)
        self.lay = np.array(lay_rows, dtype=np.int64)
        self.arr = np.array(arr_rows, dtype=np.int64)
        self.coff = np.array(coff, dtype=np.int64)
        self.hist = np.zeros(hist, np.float32)
        self.bias = np.zeros((self.batch, cb), np.float32)
        max_c = int(max(self.lay[:, L_C].max(), self.arr[:, A_HEAD].max(), self.channels))
        if max_c > _MAX_ROWS or self.lay[:, L_MID].max() > _MAX_ROWS:
            raise ValueError(f"the compiled WaveNet kernel handles up to {_MAX_ROWS} channels")
        self._lib = _native_library(self.lay) if backend in ("auto", "native") else None
        if backend == "native" and self._lib is None:
            raise ValueError("the native kernel is not available on this machine")
        self.backend = "native" if self._lib is not None else "numba"
        rows = (self.channels, _MAX_ROWS, max_c, max_c, max_c, max_c)
        self._scratch = [np.zeros(r * T, np.float32) for r in rows]
        self.used = 0
        self.set_knobs(knobs)
        if self._lib is not None:  # the native kernel's arguments, in one table
            xs, _, _, S, P, H = self._scratch
            # blocks up to _IO_BLOCK samples pass through fixed input and output buffers
            self._io = np.zeros((2, self.batch, self.channels, _IO_BLOCK), np.float32)
            sizes = [self.batch, self.channels, self.channels, cb, len(self.lay), len(self.arr)]
            arrays = (self.w, self.bias, self.lay, self.arr, self.hist, xs, S, P, H, *self._io)
            self._ctx = np.array(
                [*sizes, SPAN, 0, *(a.ctypes.data for a in arrays), 0, _IO_BLOCK, 0], np.int64
            )
            self._ctx.view(np.float32)[2 * 21] = self.scale  # ctx[21] holds the scale's bits
            self._io_ptrs = (int(self._ctx[17]), int(self._ctx[18]))
            self._ctx_arg = ctypes.c_void_p(self._ctx.ctypes.data)

    def set_knobs(self, knobs: np.ndarray) -> None:
        """Fold ``(batch, n_knobs)`` normalised knob values into the per-layer biases (and,
        with knob FiLM, into the weights: then every stream must have the same values)."""
        k = np.asarray(knobs, dtype=np.float64).reshape(self.batch, -1)
        if self._film is None:
            for off, bias, mixer in self._conv_bias:
                self.bias[:, off : off + bias.size] = bias[None] + k @ mixer.T
            return
        if not np.all(k == k[:1]):
            raise ValueError("a WaveNet with knob FiLM streams all its streams at one setting")
        (w1, b1), (w2, b2), linear = self._film
        terms = np.maximum(w1 @ k[0] + b1, 0.0) @ w2.T + b2  # the model's knobs -> FiLM MLP
        if linear is not None:
            terms = terms + linear @ k[0]
        scales = np.exp(np.where(self._is_scale, terms, 0.0)) if self._film_log else 1 + terms
        terms = np.where(self._is_scale, scales, terms)
        start = 0
        for (off, bias, mixer), rows in zip(self._conv_bias, self._film_rows, strict=True):
            mid = bias.size
            scale, shift = terms[start : start + mid], terms[start + mid : start + 2 * mid]
            start += 2 * mid
            self.bias[:, off : off + mid] = (bias[None] + k @ mixer.T) * scale + shift
            self._scale_rows(rows, scale)
        self._scale_rows(self._film_out, terms[start:])

    def _scale_rows(self, rows: list[tuple[int, np.ndarray]], scale: np.ndarray) -> None:
        for off, original in rows:
            scaled = original * scale[:, None]
            self.w[off : off + scaled.size] = scaled.reshape(-1)

    def reset(self) -> None:
        """Silence in the past, as after construction."""
        self.hist[:] = 0.0
        self.used = 0
        if self._lib is not None:
            self._ctx[7] = 0

    def process(self, x: np.ndarray) -> np.ndarray:
        """``x``: ``(batch, channels, samples)`` audio; returns the float32 output, same shape."""
        if x.ndim != 3 or x.shape[:2] != (self.batch, self.channels):
            raise ValueError(f"expected ({self.batch}, {self.channels}, samples), got {x.shape}")
        n = x.shape[2]
        if self._lib is not None and n <= _IO_BLOCK:
            np.copyto(self._io[0, :, :, :n], x)
            self._ctx[19] = n
            self._lib.wn_process(self._ctx_arg)
            return self._io[1, :, :, :n].copy()
        x = np.ascontiguousarray(x, dtype=np.float32)
        y = np.empty((self.batch, self.channels, n), np.float32)
        if self._lib is not None:  # a long block: the kernel reads and writes in place
            self._ctx[17:21] = (x.ctypes.data, y.ctypes.data, n, n)
            self._lib.wn_process(self._ctx_arg)
            self._ctx[17:21] = (*self._io_ptrs, 0, _IO_BLOCK)
            return y
        xs, Z, A, S, P, H = self._scratch
        self.used = _run(
            x, y, self.w, self.bias, self.lay, self.arr, self.coff, self.hist, self.used,
            self.scale, xs, Z, A, S, P, H,
        )  # fmt: skip
        return y


def _rows(t: torch.Tensor, rows: int) -> np.ndarray:
    """A weight or bias as float64 ``(rows, -1)``: row r is output channel r."""
    return t.detach().double().numpy().reshape(rows, -1)


_Linear = tuple[np.ndarray, np.ndarray]


def _film_weights(model: WaveNet) -> tuple[_Linear, _Linear, np.ndarray | None] | None:
    """The knob FiLM network's two linear layers as float64 (weight, bias) and its linear
    path's weight (or None), or None without FiLM."""
    if model.film is None:
        return None
    first, second = (m for m in model.film if isinstance(m, torch.nn.Linear))
    w1, w2 = _rows(first.weight, first.out_features), _rows(second.weight, second.out_features)
    assert first.bias is not None and second.bias is not None
    b1, b2 = _rows(first.bias, first.out_features)[:, 0], _rows(second.bias, w2.shape[0])[:, 0]
    lin = model.film_linear
    return (w1, b1), (w2, b2), None if lin is None else _rows(lin.weight, lin.out_features)


def _bias(conv: torch.nn.Conv1d) -> torch.Tensor:
    b = conv.bias
    return b.detach() if b is not None else torch.zeros(conv.out_channels)


def _act_name(layer: _Layer) -> str:
    return type(layer.activation).__name__


def _native_library(lay: np.ndarray) -> ctypes.CDLL | None:
    """The native kernel library if it is built here and has every layer shape compiled."""
    shapes = tuple(sorted({(int(c), bool(g)) for c, g in lay[:, [L_C, L_GATED]]}))
    if max(c for c, _ in shapes) > _NATIVE_MAX_CHANNELS:
        return None  # too many to hold in registers: the numba kernel is as fast
    return native.load(shapes)
