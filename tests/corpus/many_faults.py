"""Several faults on several hosts: one run reports them all, host by host."""

gpu_servers = (
    [
        ("gpu-1", {"port": 0, "vllm": {"dtype": "fp8"}}),
        ("gpu-2", {"bind": "0.0.0.0"}),
        ("gpu-3", {}),
    ],
    {
        "ssh_user": "deploy",
        "_sudo": True,
        "engine": "vllm",
        "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
    },
)

edge = [
    (
        "edge-1",
        {"engine": "ollama", "model": "hf://Qwen/Qwen2.5-0.5B-Instruct-GGUF", "egnine": "x"},
    ),
    ("edge-2", {"engine": "llamacpp", "os": "windows", "model": "ollama://llama3.2:3b"}),
]
