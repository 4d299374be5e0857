"""llama.cpp listening on every IPv6 interface with no API key."""

servers = [
    (
        "edge-1",
        {
            "engine": "llamacpp",
            "model": "hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf",
            "bind": "::",
        },
    ),
]
