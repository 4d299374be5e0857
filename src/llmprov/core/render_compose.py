"""Moved to llmprov.core.render.compose; this name stays so that imports of the old path still work."""

from llmprov.core.render.compose import *  # noqa: F403
