"""The local ``PYTHON_IMAGE``: a Debian bookworm root filesystem made here with debootstrap.

It carries the machine's extra CA certificates (``/usr/local/share/ca-certificates``, installed with
``update-ca-certificates``) and pip configuration (``/etc/pip.conf``), and points pip/OpenSSL at the system
bundle: package indexes are reached over TLS through the machine's own CA, so without them pip inside
``docker build`` fails with ``CERTIFICATE_VERIFY_FAILED``. Cached as a tar of the root filesystem, keyed by
the recipe and the copied host files.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from ..timing import step
from .cache import REGISTRY, content_key, images_dir

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
HOST_PIP_CONF = Path("/etc/pip.conf")
BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "SSL_CERT_FILE": BUNDLE,
    "PIP_CERT": BUNDLE,
    "REQUESTS_CA_BUNDLE": BUNDLE,
}
RECIPE = "1"


def host_files() -> list[Path]:
    cas = sorted(HOST_CA_DIR.rglob("*.crt")) if HOST_CA_DIR.is_dir() else []
    return [*cas, *([HOST_PIP_CONF] if HOST_PIP_CONF.is_file() else [])]


def base_key() -> str:
    return content_key(RECIPE, SUITE, MIRROR, *PACKAGES, *sorted(f"{k}={v}" for k, v in ENV.items()),
                       files=host_files())  # fmt: skip


def base_ref() -> str:
    return f"{REGISTRY}/python-base:{base_key()}"


def rootfs_tar() -> Path:
    """The base root filesystem as a tar (built with debootstrap the first time, ~40 s + download)."""
    out = images_dir() / f"base-{base_key()}.rootfs.tar"
    if out.is_file():
        return out
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    with tempfile.TemporaryDirectory(prefix="modelgate-base-", dir=images_dir()) as tmp:
        root = Path(tmp) / "rootfs"
        with step("images", f"debootstrap --variant=minbase {SUITE} (+{', '.join(PACKAGES)})"):
            subprocess.run(
                [debootstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), MIRROR],
                check=True, capture_output=True, timeout=1200,
            )  # fmt: skip
        with step("images", "adding the machine's CA certificates and pip configuration"):
            _add_host_trust(root)
            _slim(root)
        part = out.with_suffix(".part")
        with step("images", "packing the base root filesystem"):
            subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(part), "."], check=True)
        part.replace(out)
    return out


def _add_host_trust(root: Path) -> None:
    dest = root / HOST_CA_DIR.relative_to("/")
    dest.mkdir(parents=True, exist_ok=True)
    for ca in host_files():
        if ca.suffix == ".crt":
            shutil.copy2(ca, dest / ca.name)
    if HOST_PIP_CONF.is_file():
        shutil.copy2(HOST_PIP_CONF, root / "etc" / "pip.conf")
    subprocess.run(["chroot", str(root), "update-ca-certificates"], check=True, capture_output=True, timeout=120)


def _slim(root: Path) -> None:
    """Drop apt lists and caches (the Dockerfiles run apt-get update themselves)."""
    for d in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for f in (root / d).glob("*"):
            if f.is_file():
                f.unlink()


def import_args() -> list[str]:
    """``docker import`` --change options: the environment every build stage inherits."""
    args: list[str] = []
    for k, v in ENV.items():
        args += ["--change", f"ENV {k}={v}"]
    return [*args, "--change", 'CMD ["python3"]']
