"""Remotes on real servers: a local path, SeaweedFS's S3 gateway and OpenSSH, each started on a free
loopback port by the tests and stopped at the end; `dvc exp push/pull` through a bare git origin;
`dvc artifacts get` of the model from another folder.

One reproduced project (the session fixture) serves every server: each test pushes from a clone of it.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from servers import openssh, seaweedfs_s3
from workspace import BIN, clone_sharing_cache, commit, dvc, run

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Remote:
    name: str
    url: str
    settings: dict[str, str] = field(default_factory=dict)  # .dvc/config: shared with the team in git
    secrets: dict[str, str] = field(default_factory=dict)   # .dvc/config.local: never committed
    wrong: dict[str, str] = field(default_factory=dict)     # a credential the server refuses


def configure(repo: Path, remote: Remote, secrets: dict[str, str]) -> None:
    dvc(repo, "remote", "add", "-f", "-d", "storage", remote.url)
    for key, value in remote.settings.items():
        dvc(repo, "remote", "modify", "storage", key, value)
    for key, value in secrets.items():
        dvc(repo, "remote", "modify", "--local", "storage", key, value)


@pytest.fixture(scope="module", params=["local", "s3", "ssh"])
def remote(request, tmp_path_factory) -> Iterator[Remote]:
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "local":
        yield Remote("local", str(folder / "storage"))
    elif request.param == "s3":
        with seaweedfs_s3(folder) as server:
            yield Remote("s3", f"s3://{server.bucket}/colorize", {"endpointurl": server.endpoint},
                         {"access_key_id": server.access_key, "secret_access_key": server.secret_key},
                         {"access_key_id": server.access_key, "secret_access_key": "not-the-secret"})
    else:
        with openssh(folder / "server") as server:
            stranger = folder / "stranger_ed25519"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
            yield Remote("ssh", f"ssh://127.0.0.1:{server.port}{folder / 'storage'}", {"user": server.user},
                         {"keyfile": str(server.key)}, {"keyfile": str(stranger)})


def timed(repo: Path, *args: str) -> float:
    started = time.perf_counter()
    dvc(repo, *args)
    return time.perf_counter() - started


def test_push_then_a_fresh_clone_pulls_a_complete_workspace(remote: Remote, reproduced_project: Path,
                                                            tmp_path: Path) -> None:
    alice = clone_sharing_cache(reproduced_project, tmp_path / "alice")
    configure(alice, remote, remote.secrets)
    commit(alice, f"{remote.name} remote")
    for value in remote.secrets.values():  # credentials stay in config.local, out of git
        assert value not in (alice / ".dvc" / "config").read_text()
        assert value in (alice / ".dvc" / "config.local").read_text()
    push_s = timed(alice, "push")

    bob = tmp_path / "bob"
    run(tmp_path, "git", "clone", "-q", str(alice), str(bob))
    configure(bob, remote, remote.secrets)
    pull_s = timed(bob, "pull")
    print(f"\n{remote.name}: push {push_s:.1f} s, pull {pull_s:.1f} s")

    assert json.loads(dvc(bob, "status", "--json").stdout or "{}") == {}
    assert "Running stage" not in dvc(bob, "repro").stdout
    out = tmp_path / "colorized"
    run(bob, str(BIN / "colorize"), "metrics/palette.png", "-o", str(out), "--model", "models", "-q")
    assert list(out.glob("*.png"))


def test_a_wrong_credential_gives_one_clear_line(remote: Remote, reproduced_project: Path,
                                                 tmp_path: Path) -> None:
    if not remote.wrong:
        pytest.skip("a local path remote has no credential")
    carol = clone_sharing_cache(reproduced_project, tmp_path / "carol")
    configure(carol, remote, remote.wrong)
    result = dvc(carol, "push", check=False)
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert result.returncode != 0 and len(errors) == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.fixture(scope="module")
def origin(reproduced_project: Path, tmp_path_factory) -> dict[str, Path]:
    """Alice's clone with a local remote, pushed to a bare git origin; one experiment pushed with
    `dvc exp push` (it trains a different model)."""
    folder = tmp_path_factory.mktemp("origin")
    alice = clone_sharing_cache(reproduced_project, folder / "alice")
    configure(alice, Remote("local", str(folder / "storage")), {})
    commit(alice, "team remote")
    branch = run(alice, "git", "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
    bare = folder / "origin.git"
    run(folder, "git", "init", "-q", "--bare", f"--initial-branch={branch}", str(bare))
    run(alice, "git", "remote", "set-url", "origin", str(bare))  # a clone: origin was the project
    run(alice, "git", "push", "-q", "origin", branch)
    dvc(alice, "push")
    # A registered version (GTO's tag format) is what `dvc artifacts get` resolves.
    run(alice, "git", "tag", "-a", "colorizer@v1.0.0", "-m", "Register colorizer v1.0.0")
    run(alice, "git", "push", "-q", "origin", "colorizer@v1.0.0")
    dvc(alice, "exp", "run", "-n", "one-epoch", "-S", "train.epochs=1")
    dvc(alice, "exp", "push", "origin", "one-epoch")
    return {"alice": alice, "bare": bare, "folder": folder}


def weights(repo: Path) -> str:
    return json.loads((repo / "models" / "bundle.json").read_text())["weights_sha256"]


def test_exp_pull_and_apply_restore_a_teammates_model(origin: dict[str, Path]) -> None:
    bob = origin["folder"] / "bob"
    run(origin["folder"], "git", "clone", "-q", str(origin["bare"]), str(bob))
    dvc(bob, "exp", "pull", "origin", "one-epoch")
    assert "one-epoch" in dvc(bob, "exp", "show", "--csv").stdout
    dvc(bob, "exp", "apply", "one-epoch")
    assert weights(bob) == weights(origin["alice"])
    assert "epochs: 1" in (bob / "params.yaml").read_text()


def test_artifacts_get_fetches_the_model_from_another_folder(origin: dict[str, Path],
                                                           reproduced_project: Path) -> None:
    """Outside any repo: the model declared in dvc.yaml's artifacts, from the origin's default remote."""
    elsewhere = origin["folder"] / "elsewhere"
    elsewhere.mkdir()
    dvc(elsewhere, "artifacts", "get", str(origin["bare"]), "colorizer", "-o", "bundle")
    assert (elsewhere / "bundle" / "model.keras").is_file()
    bundle = json.loads((elsewhere / "bundle" / "bundle.json").read_text())
    assert bundle["weights_sha256"] == weights(reproduced_project)
