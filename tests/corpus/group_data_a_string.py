"""Group data given as a string instead of a mapping."""

servers = (
    ["edge-1", "edge-2"],
    "engine: ollama",
)
