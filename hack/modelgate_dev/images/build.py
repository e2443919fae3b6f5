"""Build every image the dev node runs (what is missing from the cache) and load them into containerd.

    python -m modelgate_dev.images [--containerd SOCKET]   # build + save; load too when SOCKET is given
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..timing import say, step
from . import base, pause
from .cache import REGISTRY, REPO_ROOT, content_key, images_dir, source_files
from .dockerd import Dockerd

APP_SOURCES = ("pyproject.toml", "README.md", "proxy", "operator")
APPS = {"proxy": "docker/proxy.Dockerfile", "operator": "docker/operator.Dockerfile"}


@dataclass(frozen=True)
class Image:
    name: str
    ref: str
    archive: Path
    """A ``docker save`` archive (importable with ``ctr images import``)."""


def _app_key(name: str) -> str:
    dockerfile = REPO_ROOT / APPS[name]
    return content_key("app 1", base.base_key(), files=[dockerfile, *source_files(*APP_SOURCES)])


def planned() -> dict[str, Image]:
    """The images for the current sources and host, by name (archives may not exist yet)."""
    d = images_dir()
    keys = {"pause": pause.pause_key(), **{n: _app_key(n) for n in APPS}}
    refs = {"pause": pause.pause_ref(), **{n: f"{REGISTRY}/modelgate-{n}:{k}" for n, k in keys.items() if n in APPS}}
    return {n: Image(n, refs[n], d / f"{n}-{keys[n]}.tar") for n in keys}


def ensure_built() -> dict[str, Image]:
    """Build and save whatever image is not cached yet (starting a private dockerd only then)."""
    images = planned()
    missing = [im for im in images.values() if not im.archive.is_file()]
    if not missing:
        return images
    with Dockerd() as docker, tempfile.TemporaryDirectory(prefix="modelgate-img-", dir=images_dir()) as tmp:
        for im in missing:
            if im.name == "pause":
                ctx = pause.build_context(Path(tmp) / "pause")
                with step("images", f"docker build {im.ref}"):
                    docker.run("build", "--network", "host", "-t", im.ref, str(ctx))
            else:
                _ensure_base(docker)
                ctx = _app_context(Path(tmp) / im.name)
                with step("images", f"docker build {APPS[im.name]} -> {im.ref}"):
                    docker.run("build", "--network", "host", "-f", str(ctx / APPS[im.name]),
                               "--build-arg", f"PYTHON_IMAGE={base.base_ref()}", "-t", im.ref, str(ctx))  # fmt: skip
            part = im.archive.with_suffix(".part")
            with step("images", f"docker save {im.ref}"):
                docker.run("save", "-o", str(part), im.ref)
            part.replace(im.archive)
            _prune(im, docker)
    return images


def _ensure_base(docker: Dockerd) -> None:
    ref = base.base_ref()
    try:
        docker.run("image", "inspect", ref)
        return
    except RuntimeError:
        pass
    tar = base.rootfs_tar()
    with step("images", f"docker import {ref}"):
        docker.run("import", *base.import_args(), str(tar), ref)


def _app_context(directory: Path) -> Path:
    """Only what the Dockerfiles COPY (not .venv, .git or caches)."""
    directory.mkdir(parents=True)
    for rel in (*APP_SOURCES, "docker"):
        src = REPO_ROOT / rel
        if src.is_dir():
            shutil.copytree(src, directory / rel, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, directory / rel)
    return directory


def _prune(current: Image, docker: Dockerd) -> None:
    """Remove archives and docker tags of older keys of the same image (the cache keeps one per image)."""
    for old in images_dir().glob(f"{current.name}-*.tar"):
        if old != current.archive:
            old.unlink(missing_ok=True)
    repo = current.ref.rsplit(":", 1)[0]
    for ref in docker.run("images", "--format", "{{.Repository}}:{{.Tag}}", repo).split():
        if ref != current.ref:
            docker.run("rmi", ref)
    docker.run("image", "prune", "-f")


def load(images: dict[str, Image], containerd_socket: Path, namespace: str = "k8s.io") -> None:
    """Import every archive into containerd's ``namespace`` unless that ref is there already."""
    ctr = shutil.which("ctr") or "/usr/bin/ctr"
    base_cmd = [ctr, "--address", str(containerd_socket), "--namespace", namespace]
    present = set(subprocess.run([*base_cmd, "images", "ls", "-q"], check=True, capture_output=True, text=True,
                                 timeout=60).stdout.split())  # fmt: skip
    current = {im.ref for im in images.values()}
    for ref in present:
        if ref.startswith(f"{REGISTRY}/") and ref not in current:  # an older build: free its snapshots
            subprocess.run([*base_cmd, "images", "rm", ref], capture_output=True, timeout=120)
    for im in images.values():
        if im.ref in present:
            continue
        with step("images", f"ctr images import {im.ref}"):
            subprocess.run([*base_cmd, "images", "import", str(im.archive)], check=True, capture_output=True,
                           timeout=600)  # fmt: skip
    say("images", "all images loaded: " + ", ".join(im.ref for im in images.values()))
