"""A macOS install method on a Windows host."""

windows = [
    (
        "win-1",
        {
            "os": "windows",
            "engine": "ollama",
            "model": "ollama://llama3.2:3b",
            "ollama": {"install_method": "brew"},
        },
    ),
]
