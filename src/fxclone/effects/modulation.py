"""Built-in effects: modulation (registered on import)."""

from __future__ import annotations
