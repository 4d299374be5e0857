"""Two digests for one HTTPS model, model_sha256 and '#sha256=' on the URL, that disagree."""

servers = [
    (
        "edge-1",
        {
            "engine": "llamacpp",
            "model": "https://models.example.com/smollm2-135m-q4_k_m.gguf#sha256=6a1a2eb6d15622bf3c96857206351ba97e1af16c30d7a74ee38970e434e9407e",
            "model_sha256": "0000000000000000000000000000000000000000000000000000000000000000",
        },
    ),
]
