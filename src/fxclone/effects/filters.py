"""Built-in effects: filters (registered on import)."""

from __future__ import annotations
