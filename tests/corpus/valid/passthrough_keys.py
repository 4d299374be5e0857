"""A valid inventory that carries pyinfra's keys and the user's own x_* keys next to llmprov's."""

gpu_servers = (
    [
        (
            "gpu-1",
            {
                "ssh_hostname": "10.0.10.21",
                "ssh_port": 2222,
                "ssh_key": "~/.ssh/deploy_ed25519",
                "engine": "vllm",
                "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
                "x_rack": "b3",
                "x_owner": {"team": "ml-platform"},
            },
        ),
    ],
    {"ssh_user": "deploy", "_sudo": True, "_sudo_user": "root", "_env": {"LANG": "C.UTF-8"}},
)

windows = [
    (
        "win-box",
        {
            "winrm_hostname": "10.0.10.50",
            "winrm_username": "Administrator",
            "winrm_port": 5986,
            "os": "windows",
            "engine": "ollama",
            "model": "ollama://llama3.2:3b",
            "x_asset_tag": 4711,
        },
    ),
]
