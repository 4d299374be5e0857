"""vLLM under systemd: on NVIDIA GPUs with a key and a token, and on the CPU with defaults."""

servers = [
    (
        "gpu",
        {
            "engine": "vllm",
            "model": "hf://meta-llama/Llama-3.2-1B-Instruct@main",
            "bind": "0.0.0.0",
            "port": 9000,
            "api_key_file": "_files/api-key.txt",
            "hf_token_file": "_files/hf-token.txt",
            "gpu": {"vendor": "nvidia", "count": 4},
            "vllm": {
                "version": "0.11.0",
                "tensor_parallel_size": 2,
                "pipeline_parallel_size": 2,
                "dtype": "bfloat16",
                "enforce_eager": True,
                "extra_args": ["--enable-prefix-caching"],
            },
        },
    ),
    (
        "cpu",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "vllm": {"max_model_len": 4096, "cpu_kvcache_space_gib": 8},
        },
    ),
]
