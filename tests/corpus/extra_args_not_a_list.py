"""extra_args as one string instead of a list of arguments."""

servers = [
    (
        "edge-1",
        {
            "engine": "llamacpp",
            "model": "hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf",
            "llamacpp": {"extra_args": "--flash-attn on"},
        },
    ),
]
