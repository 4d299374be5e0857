"""A Hugging Face token file holding two lines."""

gpu_servers = [
    (
        "gpu-1",
        {
            "engine": "vllm",
            "model": "hf://meta-llama/Llama-3.2-1B-Instruct",
            "hf_token_file": "files/two-lines.txt",
        },
    ),
]
