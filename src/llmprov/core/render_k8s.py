"""Moved to llmprov.core.render.k8s; this name stays so that imports of the old path still work."""

from llmprov.core.render.k8s import *  # noqa: F403
