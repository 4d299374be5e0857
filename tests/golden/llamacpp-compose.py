"""llama-server in Docker Compose from the upstream images: CPU and CUDA."""

servers = [
    (
        "cpu",
        {
            "engine": "llamacpp",
            "runtime": "compose",
            "model": "hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf",
            "served_model_name": "smollm2",
            "llamacpp": {"release": "b6710", "threads": 4},
        },
    ),
    (
        "gpu",
        {
            "engine": "llamacpp",
            "runtime": "compose",
            "model": "hf://bartowski/Llama-3.2-3B-Instruct-GGUF/Llama-3.2-3B-Instruct-Q4_K_M.gguf",
            "bind": "0.0.0.0",
            "api_key_file": "_files/api-key.txt",
            "gpu": {"vendor": "nvidia", "count": 1},
            "llamacpp": {"release": "b6710", "parallel": 8, "ctx_size": 32768},
        },
    ),
]
