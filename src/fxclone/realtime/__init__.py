"""Fast streaming kernels: the models' maths compiled for block-by-block CPU processing.

:func:`fast_kernel` returns a kernel for a model when one exists (WaveNet: a native C kernel
built with the system compiler, or a numba kernel; LSTM/GRU: a numba kernel; the impulse
response: zero-latency partitioned convolution in numpy), else ``None``.
A kernel snapshots the model's weights and holds its own streaming state; its output equals
the model's ``step``/``forward`` (tested to 1e-5 for every preset and block size).

Every kernel offers ``process(x) -> y`` on float32 ``(batch, channels, samples)`` arrays,
``reset()`` (silence in the past) and ``set_knobs(knobs)`` with ``(batch, n_knobs)``
normalised values; ``backend`` names the implementation in use.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from fxclone.models.base import EffectModel

BACKENDS = ("auto", "native", "numba")


class Kernel(Protocol):
    backend: str

    def process(self, x: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...

    def set_knobs(self, knobs: np.ndarray) -> None: ...


def fast_kernel(
    model: EffectModel, batch: int, knobs: np.ndarray | None = None, backend: str = "auto"
) -> Kernel | None:
    """A compiled kernel streaming ``batch`` streams through ``model``, or ``None``.

    ``None`` when the model's family or shape has no kernel or numba is not installed.
    ``backend`` ``"native"`` or ``"numba"`` forces that implementation (``ValueError`` if
    unavailable).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    from fxclone.models.ir import ImpulseResponse
    from fxclone.models.rnn import RecurrentModel
    from fxclone.models.wavenet import WaveNet

    if type(model) is ImpulseResponse:
        if backend in ("native", "numba"):
            raise ValueError("the impulse-response model has one kernel; use backend 'auto'")
        from fxclone.realtime.ir import IRKernel

        return IRKernel(model, batch)
    if type(model) not in (WaveNet, RecurrentModel):
        return None
    if knobs is None:
        knobs = np.zeros((batch, model.n_knobs), np.float32)
    try:
        if type(model) is WaveNet:
            from fxclone.realtime.wavenet import WaveNetKernel

            return WaveNetKernel(model, batch, knobs, backend=backend)
        if backend == "native":
            raise ValueError("recurrent models have no native kernel; use 'numba' or 'auto'")
        from fxclone.realtime.rnn import RecurrentKernel

        return RecurrentKernel(model, batch, knobs)  # type: ignore[arg-type]
    except ImportError:  # numba missing
        if backend != "auto":
            raise ValueError("the fast kernels need numba (pip install numba)") from None
        return None
    except ValueError:  # a shape the kernels do not handle
        if backend != "auto":
            raise
        return None


__all__ = ["BACKENDS", "Kernel", "fast_kernel"]
