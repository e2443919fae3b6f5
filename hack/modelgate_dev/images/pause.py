"""The sandbox ("pause") image: a static C binary that sleeps, exits on SIGINT/SIGTERM and reaps orphans."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .cache import REGISTRY, content_key

PAUSE_C = r"""
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig) { (void)sig; _exit(0); }
static void on_child(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }

int main(void) {
  struct sigaction term = {0}, child = {0};
  term.sa_handler = on_term;
  sigaction(SIGINT, &term, NULL);
  sigaction(SIGTERM, &term, NULL);
  child.sa_handler = on_child;
  child.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &child, NULL);
  for (;;) pause();
}
"""
DOCKERFILE = 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n'


def pause_key() -> str:
    return content_key("pause 1", PAUSE_C, DOCKERFILE)


def pause_ref() -> str:
    return f"{REGISTRY}/pause:{pause_key()}"


def build_context(directory: Path) -> Path:
    """Write pause.c, compile it statically and write the Dockerfile into ``directory``."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise RuntimeError("need gcc to build the pause image")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pause.c").write_text(PAUSE_C)
    subprocess.run([gcc, "-O2", "-static", "-o", str(directory / "pause"), str(directory / "pause.c")],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    subprocess.run(["strip", str(directory / "pause")], check=False, capture_output=True)
    (directory / "Dockerfile").write_text(DOCKERFILE)
    return directory
