"""The embedded default: the hosts `llmprov sandbox up` booted, serving SmolLM2-135M with llama.cpp.

The state file is $LLMPROV_SANDBOX_STATE, else $LLMPROV_CACHE/sandbox/state.json, else
~/.cache/llmprov/sandbox/state.json. `bash scripts/sandbox.sh` runs
`llmprov sandbox up`, `llmprov deploy inventories/sandbox.py -y` and `llmprov verify` on it.

llama.cpp is the sandbox's engine because it serves this model on two CPU cores seconds after it
starts; `engine="vllm"` below (vLLM on the CPU) works here too, more slowly. (`--engine vllm`
selects hosts that run vLLM or name no engine; these hosts name llama.cpp.)
"""

import os
from pathlib import Path

from llmprov.cache import DEMO_GGUF_MEMBER
from llmprov.sandbox import default_cache_dir, default_state_path, load_state

_cache = default_cache_dir(os.environ, Path.home())
_state = load_state(default_state_path(os.environ, Path.home()))
_model = _cache / "models" / Path(DEMO_GGUF_MEMBER).name

sandbox = [
    (
        name,
        {
            **ssh_data,
            "engine": "llamacpp",
            "model": f"file://{_model}",
            "served_model_name": "smollm2",
            "llamacpp": {"parallel": 4, "ctx_size": 4096, "threads": 2},
        },
    )
    for name, ssh_data in (host.inventory_entry() for host in _state.hosts)
]
