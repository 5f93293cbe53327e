"""Built-in effects: drive (registered on import)."""

from __future__ import annotations
