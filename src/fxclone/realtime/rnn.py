"""Compiled streaming kernel for :class:`fxclone.models.rnn.RecurrentModel` (LSTM or GRU).

One sample at a time (the recurrence allows nothing else), each gate pre-activation vector
is built as ``bias + sum_j W[:, j] * input[j]`` with the weights stored transposed, so the
loop over the gate rows is contiguous and vectorises. PyTorch's gate order is kept
(LSTM: i, f, g, o; GRU: r, z, n). Knob values are constant within a stream, so their input
weights are folded into the first layer's bias.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from fxclone.models.rnn import RecurrentModel
from fxclone.realtime._math import sigmoid, tanh


@njit(fastmath=True, cache=True, error_model="numpy")
def _axpy(g, wt, j, v, rows):
    """g[:rows] += wt[j, :rows] * v."""
    wr = wt[j]
    for r in range(rows):
        g[r] += wr[r] * v


@njit(fastmath=True, cache=True, error_model="numpy")
def _run(x, y, wx, wh, bx, bh, head_w, head_b, h, c, lstm, skip, gi, gh):
    """x (batch, channels, T) -> y; state h, c (layers, batch, hidden) updated in place.

    wx[l]: (inputs, gates) transposed input weights (layer 0 uses the audio channels);
    wh[l]: (hidden, gates); bx: (batch, layers, gates) input biases with knobs folded in;
    bh: (layers, gates) recurrent biases.
    """
    batch, channels, total = x.shape
    layers, _, hidden = h.shape
    gates = wh.shape[2]
    for b in range(batch):
        for t in range(total):
            for li in range(layers):
                gi[:gates] = bx[b, li]
                if li == 0:
                    for j in range(channels):
                        _axpy(gi, wx[0], j, x[b, j, t], gates)
                else:
                    for j in range(hidden):
                        _axpy(gi, wx[li], j, h[li - 1, b, j], gates)
                gh[:gates] = bh[li]
                hl = h[li, b]
                for j in range(hidden):
                    _axpy(gh, wh[li], j, hl[j], gates)
                if lstm:
                    cl = c[li, b]
                    for r in range(hidden):
                        i = sigmoid(gi[r] + gh[r])
                        f = sigmoid(gi[hidden + r] + gh[hidden + r])
                        gg = tanh(gi[2 * hidden + r] + gh[2 * hidden + r])
                        o = sigmoid(gi[3 * hidden + r] + gh[3 * hidden + r])
                        cl[r] = f * cl[r] + i * gg
                        hl[r] = o * tanh(cl[r])
                else:
                    for r in range(hidden):
                        rr = sigmoid(gi[r] + gh[r])
                        z = sigmoid(gi[hidden + r] + gh[hidden + r])
                        n = tanh(gi[2 * hidden + r] + rr * gh[2 * hidden + r])
                        hl[r] = n + z * (hl[r] - n)
            top = h[layers - 1, b]
            for o in range(y.shape[1]):
                acc = head_b[o]
                for j in range(hidden):
                    acc += head_w[o, j] * top[j]
                if skip:
                    acc += x[b, o, t]
                y[b, o, t] = acc


class RecurrentKernel:
    """Streams ``batch`` independent streams through a :class:`RecurrentModel`'s weights."""

    backend = "numba"

    def __init__(self, model: RecurrentModel, batch: int, knobs: np.ndarray) -> None:
        self.batch = int(batch)
        self.channels = model.channels
        self.lstm = model.config.cell == "lstm"
        self.skip = bool(model.skip)
        rnn = model.rnn
        layers, hidden = rnn.num_layers, rnn.hidden_size
        gates = (4 if self.lstm else 3) * hidden

        def get(name: str) -> np.ndarray:
            return getattr(rnn, name).detach().double().cpu().numpy()

        inputs = max(self.channels, hidden)
        self.wx = np.zeros((layers, inputs, gates), np.float32)
        self.wh = np.zeros((layers, hidden, gates), np.float32)
        self.bh = np.zeros((layers, gates), np.float32)
        self._bx = np.zeros((layers, gates))
        self._knob_w = get("weight_ih_l0")[:, self.channels :]
        for li in range(layers):
            w_ih = get(f"weight_ih_l{li}")
            width = self.channels if li == 0 else hidden
            self.wx[li, :width] = w_ih[:, :width].T
            self.wh[li] = get(f"weight_hh_l{li}").T
            self._bx[li] = get(f"bias_ih_l{li}")
            b_hh = get(f"bias_hh_l{li}")
            if self.lstm:  # LSTM adds both biases; fold them into the input bias
                self._bx[li] += b_hh
            else:  # GRU: the recurrent bias of n sits inside r * (...)
                self.bh[li] = b_hh
        self.head_w = model.head.weight.detach().float().cpu().numpy().copy()
        self.head_b = model.head.bias.detach().float().cpu().numpy().copy()
        self.bx = np.zeros((self.batch, layers, gates), np.float32)
        self.h = np.zeros((layers, self.batch, hidden), np.float32)
        self.c = np.zeros_like(self.h)
        self._gi = np.zeros(gates, np.float32)
        self._gh = np.zeros(gates, np.float32)
        self.set_knobs(knobs)

    def set_knobs(self, knobs: np.ndarray) -> None:
        """Fold ``(batch, n_knobs)`` normalised knob values into the first layer's bias."""
        k = np.asarray(knobs, dtype=np.float64).reshape(self.batch, -1)
        bx = np.repeat(self._bx[None], self.batch, axis=0)
        bx[:, 0] += k @ self._knob_w.T
        self.bx[:] = bx

    def reset(self) -> None:
        self.h[:] = 0.0
        self.c[:] = 0.0

    def process(self, x: np.ndarray) -> np.ndarray:
        """``x``: float32 ``(batch, channels, samples)``; returns the output, same shape."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 3 or x.shape[:2] != (self.batch, self.channels):
            raise ValueError(f"expected ({self.batch}, {self.channels}, samples), got {x.shape}")
        y = np.empty((self.batch, self.channels, x.shape[2]), np.float32)
        _run(x, y, self.wx, self.wh, self.bx, self.bh, self.head_w, self.head_b, self.h,
             self.c, self.lstm, self.skip, self._gi, self._gh)  # fmt: skip
        return y
