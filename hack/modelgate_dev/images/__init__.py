"""Images built on this machine for the real dev node (no registry is reachable here).

- ``base``: a Debian bookworm root filesystem from debootstrap (python3, venv, CA certificates), the local
  ``PYTHON_IMAGE`` for the project's Dockerfiles; carries the machine's extra CA certificates and pip
  configuration so pip inside ``docker build`` reaches the package index.
- ``pause``: the sandbox image, a static C binary.
- ``proxy`` / ``operator``: ``docker/*.Dockerfile`` built with ``--build-arg PYTHON_IMAGE=<base>``.

Every image is cached by a content key (its inputs' hash) as a ``docker save`` archive under
``<cache>/images``; ``python -m modelgate_dev.images`` builds what is missing and loads all of them into the
node's containerd.
"""
