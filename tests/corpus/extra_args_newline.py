"""extra_args holding a newline that would start a new unit line."""

servers = [
    (
        "gpu-1",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "vllm": {"extra_args": ["--seed=1\n[Install]\nAlias=sshd.service"]},
        },
    ),
]
