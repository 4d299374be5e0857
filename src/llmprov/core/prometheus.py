"""Moved to llmprov.core.render.prometheus; this name stays so that imports of the old path still work."""

from llmprov.core.render.prometheus import *  # noqa: F403
