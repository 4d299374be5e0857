"""model_sha256 that is not 64 hex digits (a digest copied with its 'sha256:' prefix)."""

servers = [
    (
        "edge-1",
        {
            "engine": "llamacpp",
            "model": "https://models.example.com/qwen2.5-0.5b-instruct-q4_k_m.gguf",
            "model_sha256": "sha256:6a1a2eb6d15622bf3c96857206351ba97e1af16c30d7a74ee38970e434e9407e",
        },
    ),
]
