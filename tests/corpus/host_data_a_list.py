"""Host data given as a list instead of a mapping."""

servers = [
    ("edge-1", ["engine", "ollama"]),
]
