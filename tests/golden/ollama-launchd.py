"""Ollama on a Mac under launchd, installed as the app."""

macs = [
    (
        "mac",
        {
            "os": "macos",
            "arch": "aarch64",
            "engine": "ollama",
            "model": "ollama://llama3.2:3b",
            "bind": "0.0.0.0",
            "expose_unauthenticated": True,
            "allow_from": ["10.0.0.0/8"],
            "ollama": {"install_method": "app", "flash_attention": False},
        },
    ),
]
