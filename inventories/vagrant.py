"""The Vagrant machines (inventories/machines.json, shared with the Vagrantfile) as a pyinfra inventory.

Linux boxes are reached with pyinfra's @vagrant connector settings resolved here to plain SSH data
from `vagrant ssh-config`, so `llmprov deploy`, `llmprov verify` and `pyinfra` all use one connection.
Run `vagrant up` first.
"""

import json
import subprocess
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_MACHINES = json.loads((_HERE / "machines.json").read_text())["machines"]
_MODEL = "hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf"


def _ssh_config(name):
    """`vagrant ssh-config NAME` as a dict, or {} when the machine is not up."""
    try:
        out = subprocess.run(
            ["vagrant", "ssh-config", name],
            cwd=_HERE.parent,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    pairs = (line.strip().split(None, 1) for line in out.splitlines() if line.strip())
    return {k: v for k, v in (p for p in pairs if len(p) == 2)}


def _host(m):
    data = {"os": m["os"], "engine": m["engine"], "x_vagrant_box": m["box"]}
    if m["os"] == "windows":
        data.update(
            winrm_hostname=m["ip"],
            winrm_username="vagrant",
            winrm_password="vagrant",
            model="ollama://smollm2:135m",
        )
        return m["name"], data
    ssh = _ssh_config(m["name"])
    data.update(
        ssh_hostname=ssh.get("HostName", m["ip"]),
        ssh_port=int(ssh.get("Port", 22)),
        ssh_user=ssh.get("User", "vagrant"),
        ssh_key=ssh.get("IdentityFile", "~/.vagrant.d/insecure_private_key").strip('"'),
        ssh_known_hosts_file="/dev/null",
        ssh_strict_host_key_checking="no",
        _sudo=True,
        model=_MODEL,
        served_model_name="smollm2",
    )
    return m["name"], data


vagrant = [_host(m) for m in _MACHINES]
