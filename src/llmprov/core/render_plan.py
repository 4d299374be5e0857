"""Moved to llmprov.core.render.plan; this name stays so that imports of the old path still work."""

from llmprov.core.render.plan import *  # noqa: F403
