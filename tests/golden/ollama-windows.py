"""Ollama as a Windows service on loopback (no firewall rule)."""

windows = [
    (
        "win",
        {
            "os": "windows",
            "engine": "ollama",
            "model": "ollama://llama3.2:3b",
            "ollama": {"version": "0.12.6", "keep_alive": "-1", "models_dir": "D:/ollama/models"},
        },
    ),
]
