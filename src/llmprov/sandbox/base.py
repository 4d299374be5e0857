"""The cached pieces every sandbox host is made from: the Debian base, the trust layer, the SSH key."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from llmprov.filelock import file_lock
from llmprov.sandbox import plan, system
from llmprov.sandbox.errors import SandboxError

APT_DIR = Path("/etc/apt")
# Where Debian's update-ca-certificates takes the CAs an administrator added.
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")
BASE_MANIFEST = Path("etc/llmprov-sandbox-base.json")
SOURCES_FILE = Path("etc/apt/sources.list.d/debian.sources")


def read_apt_sources(apt_dir: Path = APT_DIR) -> list[plan.AptSource]:
    """The controller's apt sources: sources.list, then sources.list.d/*.list and *.sources."""
    sources = plan.parse_one_line_sources(system.read_text(apt_dir / "sources.list"))
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix == ".list":
                sources += plan.parse_one_line_sources(path.read_text())
            elif path.suffix == ".sources":
                sources += plan.parse_deb822_sources(path.read_text())
    return sources


@dataclass(frozen=True)
class BaseSpec:
    """What goes into a base; its key names the cached directory."""

    suite: str
    mirror: str
    packages: tuple[str, ...]
    sources_text: str

    @property
    def key(self) -> str:
        return plan.base_key(self.packages, self.suite, self.mirror, self.sources_text)

    @property
    def dir_name(self) -> str:
        return plan.base_dir_name(self.suite, self.key)


def base_spec(
    sources: list[plan.AptSource],
    suite: str = plan.DEFAULT_SUITE,
    packages: tuple[str, ...] = plan.BASE_PACKAGES,
) -> BaseSpec:
    kept = plan.sources_for_suite(sources, suite)
    return BaseSpec(
        suite=suite,
        mirror=plan.pick_mirror(kept, suite),
        packages=packages,
        sources_text=plan.render_deb822(kept),
    )


def cached_base(
    cache_dir: Path, *, suite: str = plan.DEFAULT_SUITE, apt_dir: Path = APT_DIR
) -> Path | None:
    """The base `ensure_base` would return, if it is already built; None if it would build one."""
    final = cache_dir / "bases" / base_spec(read_apt_sources(apt_dir), suite).dir_name
    return final if final.is_dir() else None


def ensure_base(
    cache_dir: Path,
    *,
    suite: str = plan.DEFAULT_SUITE,
    packages: tuple[str, ...] = plan.BASE_PACKAGES,
    apt_dir: Path = APT_DIR,
) -> Path:
    """A Debian minbase root filesystem for `suite`, built with debootstrap unless cached.

    Cached as `cache_dir/bases/SUITE-KEY`; the key hashes the package list, suite, mirror and apt
    sources, so changing any of them builds a new base. The build happens in a temporary sibling
    renamed into place when complete, so an interrupted build leaves no base behind.
    """
    spec = base_spec(read_apt_sources(apt_dir), suite, packages)
    final = cache_dir / "bases" / spec.dir_name
    if final.is_dir():
        return final
    system.require_root()
    system.ensure_host_tools()
    with file_lock(final.parent / f".{final.name}.lock"):
        if final.is_dir():
            return final
        with system.atomic_directory(final) as root:
            _build_base(root, spec, final.parent / f"{final.name}.log")
    return final


def _build_base(root: Path, spec: BaseSpec, log_path: Path) -> None:
    argv = plan.debootstrap_argv(root, spec.suite, spec.mirror, spec.packages)
    with log_path.open("w") as log:
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(system.COMMAND_ENV),
            check=False,
        )
    if result.returncode != 0:
        tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise SandboxError(
            f"debootstrap failed (exit {result.returncode}); full log: {log_path}\n{tail}"
        )
    # Every clone must get its own machine id at first boot.
    (root / "etc/machine-id").write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    # nspawn names the host; the controller's name that debootstrap copied would override it.
    (root / "etc/hostname").unlink(missing_ok=True)
    system.write_file(root / "etc/ssh/sshd_config.d/llmprov-sandbox.conf", plan.SSHD_DROPIN)
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    system.write_file(root / SOURCES_FILE, spec.sources_text)
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(ssh_dir, 0o700)
    system.run(["chroot", str(root), "apt-get", "clean"])
    manifest = {
        "suite": spec.suite,
        "mirror": spec.mirror,
        "packages": list(spec.packages),
        "key": spec.key,
        "recipe": plan.BASE_RECIPE_VERSION,
    }
    system.write_file(root / BASE_MANIFEST, json.dumps(manifest, indent=2) + "\n")


def local_ca_files(ca_dir: Path = LOCAL_CA_DIR) -> list[Path]:
    """The CA certificates an administrator added on the controller (`*.crt`, as Debian reads them)."""
    if not ca_dir.is_dir():
        return []
    return sorted(p for p in ca_dir.rglob("*.crt") if p.is_file())


def ensure_trust_layer(cache_dir: Path, base: Path, ca_dir: Path = LOCAL_CA_DIR) -> Path | None:
    """An overlay layer over `base` that trusts the controller's locally added CAs, or None if none.

    Where the controller reaches package registries through a TLS-inspecting proxy, hosts need the
    same CAs to reach them too. Kept apart from the base because such CAs may change per machine.
    """
    certs = local_ca_files(ca_dir)
    if not certs:
        return None
    digest = hashlib.sha256(base.name.encode())
    for cert in certs:
        digest.update(str(cert.relative_to(ca_dir)).encode() + b"\0" + cert.read_bytes())
    final = cache_dir / "layers" / f"trust-{digest.hexdigest()[:16]}"
    if final.is_dir():
        return final / "upper"
    system.require_root()
    with file_lock(final.parent / f".{final.name}.lock"):
        if final.is_dir():
            return final / "upper"
        with system.atomic_directory(final) as temp:
            upper, work, merged = temp / "upper", temp / "work", temp / "merged"
            for path in (upper, work, merged):
                path.mkdir()
            system.run(plan.overlay_mount_argv([base], upper, work, merged))
            try:
                for cert in certs:
                    target = merged / "usr/local/share/ca-certificates" / cert.relative_to(ca_dir)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(cert.read_bytes())
                    os.chmod(target, 0o644)
                system.run(["chroot", str(merged), "update-ca-certificates"])
                system.write_file(merged / "etc/pip.conf", plan.PIP_CONF_TRUST)
                environment = system.read_text(merged / "etc/environment")
                system.write_file(
                    merged / "etc/environment", plan.with_trust_environment(environment)
                )
            finally:
                system.unmount_tree(merged)
            system.remove_tree(work)
            system.remove_tree(merged)
            # A root-owned, empty tmp appears from chroot; drop what the layer need not carry.
            system.remove_tree(upper / "tmp")
    return final / "upper"


def ensure_ssh_key(cache_dir: Path) -> Path:
    """The harness's ed25519 key pair, generated once under `cache_dir/ssh`; returns the private key."""
    key = cache_dir / "ssh" / "id_ed25519"
    public = key.with_name(key.name + ".pub")
    if key.is_file() and public.is_file():
        return key
    key.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(key.parent, 0o700)
    with file_lock(key.parent / ".keygen.lock"):
        if key.is_file() and public.is_file():
            return key
        with tempfile.TemporaryDirectory(dir=key.parent) as temp:
            fresh = Path(temp) / key.name
            argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "llmprov-sandbox"]
            system.run([*argv, "-f", str(fresh)])
            os.replace(fresh.with_name(fresh.name + ".pub"), public)
            os.replace(fresh, key)
    return key


def public_key(private_key: Path) -> str:
    return private_key.with_name(private_key.name + ".pub").read_text()
