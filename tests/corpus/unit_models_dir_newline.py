"""A models folder carrying a newline and a systemd directive after it."""

servers = [
    (
        "edge-1",
        {
            "engine": "ollama",
            "model": "ollama://llama3.2:3b",
            "ollama": {"models_dir": "/srv/models\nExecStartPre=+/bin/sh -c id"},
        },
    ),
]
