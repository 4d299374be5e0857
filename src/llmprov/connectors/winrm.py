"""The `@winrm` pyinfra connector: PowerShell over WinRM (PowerShell Remoting) through pypsrp.

pyinfra 3 ships no Windows connector. This one is registered under the `pyinfra.connectors` entry
point, so an inventory names Windows hosts `@winrm/HOST` (or `@winrm/NAME` with `winrm_hostname`)
and both `llmprov deploy` and the pyinfra CLI reach them. Commands are PowerShell scripts; an
operation succeeds when the script raised no error (`had_errors` is false). Files go both ways
with PowerShell Remoting's own copy and fetch.

Install with the `windows` extra (`pip install 'llmprov[windows]'`), which brings pypsrp. Host data:

    winrm_hostname          address (default: the name after `@winrm/`)
    winrm_username          account, e.g. Administrator or DOMAIN\\user
    winrm_password          its password (keep it out of version control: read it from a file
                            or the environment in the inventory file)
    winrm_port              5986 with TLS, 5985 without (default: by winrm_ssl)
    winrm_ssl               use HTTPS (default true)
    winrm_auth              negotiate (default), ntlm, kerberos, credssp, basic, certificate
    winrm_cert_validation   check the server's TLS certificate (default true)
"""

from __future__ import annotations

import importlib
import os
import tempfile
from collections.abc import Callable, Iterator
from io import IOBase
from typing import Any, ClassVar

from pyinfra.api.exceptions import ConnectError
from pyinfra.connectors.base import BaseConnector, ConnectorData, DataMeta
from pyinfra.connectors.util import CommandOutput, OutputLine


class WinRMConnectorData(ConnectorData, total=False):
    winrm_hostname: str
    winrm_username: str
    winrm_password: str
    winrm_port: int
    winrm_ssl: bool
    winrm_auth: str
    winrm_cert_validation: bool


def pypsrp_client(**kwargs: Any) -> Any:
    """A pypsrp Client; imported here so that llmprov runs without the `windows` extra."""
    try:
        module = importlib.import_module("pypsrp.client")
    except ImportError as exc:
        raise ConnectError(
            "the @winrm connector needs pypsrp: pip install 'llmprov[windows]'"
        ) from exc
    return module.Client(**kwargs)


def _command_text(command: Any) -> str:
    raw = getattr(command, "get_raw_value", None)
    return str(raw() if callable(raw) else command)


class WinRMConnector(BaseConnector):
    """Runs pyinfra's commands as PowerShell on a Windows host over WinRM."""

    handles_execution = True
    data_cls = WinRMConnectorData
    data_meta: ClassVar[dict[str, DataMeta]] = {  # type: ignore[misc]
        "winrm_hostname": DataMeta("address of the host (default: the inventory name)"),
        "winrm_username": DataMeta("account to log in as"),
        "winrm_password": DataMeta("password of that account"),
        "winrm_port": DataMeta("port (default 5986 with TLS, 5985 without)"),
        "winrm_ssl": DataMeta("use HTTPS", True),
        "winrm_auth": DataMeta(
            "authentication: negotiate, ntlm, kerberos, credssp, basic", "negotiate"
        ),
        "winrm_cert_validation": DataMeta("check the server's TLS certificate", True),
    }
    # A seam for tests: builds the client from keyword arguments.
    client_factory: ClassVar[Callable[..., Any]] = staticmethod(pypsrp_client)

    client: Any = None

    @staticmethod
    def make_names_data(name: str | None = None) -> Iterator[tuple[str, dict[str, Any], list[str]]]:
        if not name:
            raise ValueError("name the host: @winrm/HOSTNAME")
        yield f"@winrm/{name}", {"winrm_hostname": name}, ["@winrm"]

    def client_arguments(self) -> dict[str, Any]:
        data = self.data
        ssl = bool(data.get("winrm_ssl", True))
        return {
            "server": data.get("winrm_hostname") or self.host.name.removeprefix("@winrm/"),
            "username": data.get("winrm_username"),
            "password": data.get("winrm_password"),
            "port": int(data.get("winrm_port") or (5986 if ssl else 5985)),
            "ssl": ssl,
            "auth": data.get("winrm_auth") or "negotiate",
            "cert_validation": bool(data.get("winrm_cert_validation", True)),
        }

    def connect(self) -> None:
        arguments = self.client_arguments()
        try:
            self.client = type(self).client_factory(**arguments)
            _out, _streams, had_errors = self.client.execute_ps("$PSVersionTable.PSVersion.Major")
        except ConnectError:
            raise
        except Exception as exc:  # pypsrp and its transports raise many kinds
            raise ConnectError(
                f"WinRM to {arguments['server']}:{arguments['port']}: {exc}"
            ) from exc
        if had_errors:
            raise ConnectError(f"WinRM to {arguments['server']}: PowerShell did not start")

    def disconnect(self) -> None:
        self.client = None

    def run_shell_command(
        self,
        command: Any,
        print_output: bool = False,
        print_input: bool = False,
        **arguments: Any,
    ) -> tuple[bool, CommandOutput]:
        script = _command_text(command)
        try:
            output, streams, had_errors = self.client.execute_ps(script)
        except Exception as exc:
            return False, CommandOutput([OutputLine("stderr", f"WinRM: {exc}")])
        lines = [OutputLine("stdout", line) for line in str(output or "").splitlines()]
        for record in getattr(streams, "error", None) or []:
            lines.append(OutputLine("stderr", str(record)))
        return not had_errors, CommandOutput(lines)

    def put_file(
        self,
        filename_or_io: str | IOBase,
        remote_filename: str,
        remote_temp_filename: str | None = None,
        print_output: bool = False,
        print_input: bool = False,
        **arguments: Any,
    ) -> bool:
        if isinstance(filename_or_io, str):
            return self._copy(filename_or_io, remote_filename)
        data = filename_or_io.read()
        payload = data.encode() if isinstance(data, str) else bytes(data)
        fd, local = tempfile.mkstemp(prefix="llmprov-winrm-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            return self._copy(local, remote_filename)
        finally:
            os.unlink(local)

    def _copy(self, local: str, remote: str) -> bool:
        try:
            self.client.copy(local, remote)
        except Exception:
            return False
        return True

    def get_file(
        self,
        remote_filename: str,
        filename_or_io: str | IOBase,
        remote_temp_filename: str | None = None,
        print_output: bool = False,
        print_input: bool = False,
        **arguments: Any,
    ) -> bool:
        if isinstance(filename_or_io, str):
            try:
                self.client.fetch(remote_filename, filename_or_io)
            except Exception:
                return False
            return True
        fd, local = tempfile.mkstemp(prefix="llmprov-winrm-")
        os.close(fd)
        try:
            self.client.fetch(remote_filename, local)
            with open(local, "rb") as handle:
                filename_or_io.write(handle.read())
        except Exception:
            return False
        finally:
            os.unlink(local)
        return True
