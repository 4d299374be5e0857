"""A cluster address carrying nftables syntax that would flush the host's whole rule set."""

nodes = (
    [("gpu-1", {"ssh_hostname": "10.0.0.11"}), ("gpu-2", {"ssh_hostname": "10.0.0.12"})],
    {
        "engine": "vllm",
        "model": "hf://Qwen/Qwen2.5-0.5B-Instruct",
        "gpu": {"vendor": "nvidia", "count": 1},
        "vllm": {"version": "0.11.0"},
        "cluster": {
            "name": "qwen",
            "head": "gpu-1",
            "addresses": {"gpu-2": "10.0.0.12 }; flush ruleset; set x { type ipv4_addr"},
        },
    },
)
