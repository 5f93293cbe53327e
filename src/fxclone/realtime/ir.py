"""Zero-latency partitioned convolution for the impulse-response model.

The response is cut into partitions of ``P`` taps. The first partition is applied directly in
the time domain, sample by sample, so there is no latency; the rest by uniformly partitioned
overlap-save: when a block of ``P`` input samples completes, its spectrum joins a frequency-
domain delay line, and the tail's contribution to the *next* block (which only needs input up
to the current one) is the sum of the delay line's spectra times the partitions' spectra.
Work per sample is about ``P`` multiply-adds plus ``taps / P`` complex ones, whatever the host's
block size, for each branch of a parallel Hammerstein model (``ir-nl``: the input and its
saturated copies each run through their own response, and the results are summed).
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from fxclone.models.ir import ImpulseResponse


class IRKernel:
    backend = "numpy"

    def __init__(self, model: ImpulseResponse, batch: int, partition: int = 512) -> None:
        # (channels, branches, taps): the linear response, then one per saturating branch;
        # each branch is a row of its own, and the rows of one channel are summed.
        h = torch.cat([model.h[:, None], model.hn], dim=1).detach().cpu().double().numpy()
        self.gains = model.gains
        self.batch, self.channels, self.branches = batch, h.shape[0], h.shape[1]
        p = self.partition = min(partition, max(1, h.shape[2]))
        parts = -(-h.shape[2] // p)
        padded = np.zeros((self.channels, self.branches, parts * p))
        padded[:, :, : h.shape[2]] = h
        rows = np.repeat(padded[None], batch, axis=0).reshape(-1, parts * p)
        self.head = rows[:, :p][:, ::-1].copy()  # reversed, for a dot product with the past
        # the later partitions' spectra, zero-padded to 2P, in order 1..parts-1
        tail = rows[:, p:].reshape(rows.shape[0], parts - 1, p)
        self.spectra = np.fft.rfft(tail, 2 * p, axis=2)
        self.reset()

    def reset(self) -> None:
        rows, p = self.batch * self.channels * self.branches, self.partition
        self.past = np.zeros((rows, p - 1))  # the last P - 1 inputs, for the head
        self.block = np.zeros((rows, p))  # the current block's inputs so far
        self.previous = np.zeros((rows, p))  # the last complete block
        self.fill = 0
        self.tail = np.zeros((rows, p))  # the tail's output for the current block
        self.line = np.zeros((rows, max(1, self.spectra.shape[1]), p + 1), complex)
        self.newest = -1  # slot of the newest spectrum in the delay line

    def set_knobs(self, knobs: np.ndarray) -> None:
        if np.asarray(knobs).size:
            raise ValueError("the impulse-response model takes no knobs")

    def process(self, x: np.ndarray) -> np.ndarray:
        inputs = np.asarray(x, dtype=np.float64).reshape(self.batch * self.channels, 1, -1)
        if self.gains:
            saturated = [np.tanh(k * inputs) / k for k in self.gains]
            inputs = np.concatenate([inputs, *saturated], axis=1)
        flat = inputs.reshape(-1, inputs.shape[2])
        out = np.empty_like(flat)
        i = 0
        while i < flat.shape[1]:
            n = min(self.partition - self.fill, flat.shape[1] - i)
            seg = flat[:, i : i + n]
            context = np.concatenate([self.past, seg], axis=1)
            windows = sliding_window_view(context, self.partition, axis=1)
            head = np.einsum("rlp,rp->rl", windows, self.head)
            out[:, i : i + n] = head + self.tail[:, self.fill : self.fill + n]
            self.past = context[:, context.shape[1] - (self.partition - 1) :]
            self.block[:, self.fill : self.fill + n] = seg
            self.fill += n
            i += n
            if self.fill == self.partition:
                self._block_done()
        summed = out.reshape(-1, self.branches, out.shape[1]).sum(axis=1)
        return summed.reshape(x.shape).astype(np.float32)

    def _block_done(self) -> None:
        p, parts = self.partition, self.spectra.shape[1]
        if parts:
            spectrum = np.fft.rfft(np.concatenate([self.previous, self.block], axis=1), axis=1)
            self.newest = (self.newest + 1) % parts
            self.line[:, self.newest] = spectrum
            # The newest block pairs with partition 1, the one before with partition 2, ...
            k = self.newest
            total = np.einsum("rkf,rkf->rf", self.line[:, k::-1], self.spectra[:, : k + 1])
            if k + 1 < parts:
                older = self.line[:, :k:-1]
                total += np.einsum("rkf,rkf->rf", older, self.spectra[:, k + 1 :])
            self.tail = np.fft.irfft(total, 2 * p, axis=1)[:, p:]
        self.previous, self.block = self.block, self.previous
        self.fill = 0
