"""A models folder that climbs out with `..`."""

servers = [
    (
        "edge-1",
        {
            "engine": "ollama",
            "model": "ollama://llama3.2:3b",
            "ollama": {"models_dir": "/srv/models/../../etc"},
        },
    ),
]
