"""Moved to llmprov.core.render.launchd; this name stays so that imports of the old path still work."""

from llmprov.core.render.launchd import *  # noqa: F403
