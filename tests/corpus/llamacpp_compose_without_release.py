"""llama.cpp in Docker Compose with no release: the image tag would be unpinned."""

servers = [
    (
        "edge-1",
        {
            "engine": "llamacpp",
            "runtime": "compose",
            "model": "hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf",
        },
    ),
]
