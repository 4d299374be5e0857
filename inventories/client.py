"""A client install: copy this file, change the addresses, models and keys, then

    llmprov render inventories/client.py --out /tmp/r        # see exactly what will be installed
    llmprov deploy inventories/client.py --engine vllm       # or ollama, or llamacpp

Groups are pyinfra groups: a list of hosts, or (hosts, data) where the data applies to all of them.
Each host is a name, or (name, data). llmprov's keys are checked before any host is touched;
pyinfra's own keys (ssh_*, _sudo, ...) pass through, and your own data goes in x_* keys.
"""

gpu_servers = (
    [
        (
            "gpu-1",
            {
                "ssh_hostname": "10.0.10.21",
                "engine": "vllm",
                "model": "hf://HuggingFaceTB/SmolLM2-1.7B-Instruct@main",
                "served_model_name": "smollm2",
                "bind": "0.0.0.0",
                "api_key_file": "files/api-key.txt",
                # The driver is stated so that `llmprov render --k8s` can pin an image offline;
                # without it the deploy reads it from the host.
                "gpu": {
                    "vendor": "nvidia",
                    "count": 2,
                    "compute_capability": "8.9",
                    "driver_version": "570.133.20",
                },
                "vllm": {"max_model_len": 8192, "gpu_memory_utilization": 0.85},
            },
        ),
        (
            "gpu-2",
            {
                "ssh_hostname": "10.0.10.22",
                "engine": "vllm",
                "runtime": "compose",
                "model": "hf://HuggingFaceTB/SmolLM2-1.7B-Instruct@main",
                "served_model_name": "smollm2",
                "gpu": {"vendor": "nvidia", "count": 1, "compute_capability": "9.0"},
                "vllm": {"version": "0.11.0", "max_model_len": 8192},
            },
        ),
    ],
    {"ssh_user": "deploy", "_sudo": True},
)

macs = [
    (
        "mac-studio",
        {
            "ssh_hostname": "10.0.10.40",
            "ssh_user": "admin",
            "os": "macos",
            "arch": "aarch64",
            "engine": "ollama",
            "model": "ollama://llama3.2:3b",
            "ollama": {"install_method": "brew", "keep_alive": "30m", "num_parallel": 4},
        },
    ),
]

windows = [
    (
        "@winrm/win-box",
        {
            "winrm_hostname": "10.0.10.50",
            "winrm_username": "Administrator",
            "os": "windows",
            "engine": "ollama",
            "model": "ollama://llama3.2:3b",
            # Ollama has no API key: opening it beyond loopback is said explicitly, and the
            # firewall rule llmprov writes admits only these networks.
            "bind": "0.0.0.0",
            "expose_unauthenticated": True,
            "allow_from": ["10.0.10.0/24"],
            "ollama": {
                "install_method": "zip-service",
                "flash_attention": True,
                "kv_cache_type": "q8_0",
            },
        },
    ),
]

edge = (
    [
        (
            "edge-1",
            {
                "ssh_hostname": "10.0.10.60",
                "engine": "llamacpp",
                "model": "hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf",
                "served_model_name": "smollm2",
                # Built from llmprov's pinned llama-cpp-python sdist (its sha256 is in llmprov);
                # the release tag names the image compose and Kubernetes use. To build the upstream
                # release instead, drop "source" and give "release_sha256" (GitHub publishes none).
                "llamacpp": {
                    "source": "pypi",
                    "release": "b6710",
                    "parallel": 4,
                    "ctx_size": 4096,
                    "threads": 2,
                },
            },
        ),
        (
            "edge-2",
            {
                "ssh_hostname": "10.0.10.61",
                "engine": "ollama",
                "runtime": "compose",
                "model": "ollama://smollm2:135m",
                "ollama": {"version": "0.12.6", "keep_alive": "-1"},
            },
        ),
    ],
    {"ssh_user": "deploy", "_sudo": True},
)
