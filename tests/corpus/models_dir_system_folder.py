"""A models folder that is a system folder."""

servers = [
    (
        "edge-1",
        {"engine": "ollama", "model": "ollama://llama3.2:3b", "ollama": {"models_dir": "/etc"}},
    ),
]
