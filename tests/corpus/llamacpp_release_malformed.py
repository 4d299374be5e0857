"""A llama.cpp release without its 'b' prefix."""

servers = [
    (
        "edge-1",
        {
            "engine": "llamacpp",
            "model": "hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf",
            "llamacpp": {"source": "upstream", "release": "6710"},
        },
    ),
]
