"""An API key in extra_args: it would show in `ps` and in the unit; use api_key_file."""

gpu_servers = [
    (
        "gpu-1",
        {
            "engine": "vllm",
            "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
            "vllm": {"extra_args": ["--enable-prefix-caching", "--api-key=s3cret"]},
        },
    ),
]
