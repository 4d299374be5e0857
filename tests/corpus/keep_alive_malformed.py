"""An Ollama keep_alive in words instead of a Go duration."""

servers = [
    (
        "edge-1",
        {
            "engine": "ollama",
            "model": "ollama://llama3.2:3b",
            "ollama": {"keep_alive": "5 minutes"},
        },
    ),
]
