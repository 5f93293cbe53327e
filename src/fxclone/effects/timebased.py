"""Built-in effects: timebased (registered on import)."""

from __future__ import annotations
