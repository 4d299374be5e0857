"""Moved to llmprov.core.render.windows; this name stays so that imports of the old path still work."""

from llmprov.core.render.windows import *  # noqa: F403
