"""A version with a trailing newline (a `$` regex would take it)."""

servers = [
    (
        "edge-1",
        {"engine": "ollama", "model": "ollama://llama3.2:3b", "ollama": {"version": "0.12.6\n"}},
    ),
]
