"""A context split over so many slots that each request gets 64 tokens."""

servers = [
    (
        "edge-1",
        {
            "engine": "llamacpp",
            "model": "hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf",
            "llamacpp": {"ctx_size": 1024, "parallel": 16},
        },
    ),
]
