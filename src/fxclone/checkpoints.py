"""Checkpoint files that survive a kill: atomic writes, a time-driven resume checkpoint, and
reading a checkpoint's progress back (step and epochs) for a resumed run."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import torch

from fxclone.audio import atomic_path
from fxclone.errors import FxcloneError


def checkpoint_progress(path: Path) -> tuple[int, int]:
    """(optimiser step, epochs run) of a checkpoint; refuses an unreadable one."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        done = ckpt["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"]
        return int(ckpt["global_step"]), int(done)
    except Exception as exc:  # any failure to unpickle means the same thing to the user
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:100]
        raise FxcloneError(
            f"{path} cannot be read ({detail}); pass --fresh to start over"
        ) from None


def checkpoint_io() -> Any:
    """A Lightning checkpoint writer: temporary file, fsync, rename (see ``atomic_path``), so
    a kill, a full disk or a crash during a write leaves the previous checkpoint intact."""
    from lightning.fabric.plugins import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        def save_checkpoint(
            self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
        ) -> None:
            buffer = io.BytesIO()  # serialised first: a failed write then fails cleanly
            torch.save(checkpoint, buffer)
            with atomic_path(path, durable=True) as tmp:
                tmp.write_bytes(buffer.getbuffer())

    return AtomicCheckpointIO()


def last_checkpoint(path: Path, interval_s: float) -> Any:
    """A callback writing ``path`` every ``interval_s`` of training and at every epoch end.

    Mid-epoch writes skip an epoch's final batch: the epoch-end write (after validation, early
    stopping and the best checkpoint) follows at once, and a checkpoint taken between the last
    batch and validation would make a resumed run skip that validation."""
    from lightning.pytorch.callbacks import Checkpoint

    class LastCheckpoint(Checkpoint):
        saved_at, step = time.monotonic(), -1

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            final = trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
            if not final and time.monotonic() - self.saved_at >= interval_s:
                self._save(trainer)

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self._save(trainer)

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            self._save(trainer)  # stopped by the time limit mid-epoch

        def _save(self, trainer: Any) -> None:
            if trainer.global_step != self.step:
                trainer.save_checkpoint(path)
                self.step = trainer.global_step
            self.saved_at = time.monotonic()

    return LastCheckpoint()
