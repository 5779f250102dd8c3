"""``lskd setup-data``: get the demo's Fashion-MNIST onto any machine, with or without root, sudo or apt lists.

The paths, tried in order, each ending in files that lskd verifies against ``checksums.json`` when it reads them:

1. **found**: the files are already where lskd looks (``$LSKD_DATA``, Debian's ``/usr/share/datasets/fashion-mnist``,
   or :func:`user_data_dir`); nothing is installed.
2. **Debian package**: as root ``apt-get install dataset-fashion-mnist`` (with ``sudo`` for a user who has it);
   when the package lists are empty (a fresh container) the install fails, so ``apt-get update`` runs and the
   install is retried once.
3. **download**: the official files from the Fashion-MNIST mirror into :func:`user_data_dir` (MD5 and SHA-256
   checked, written atomically), which lskd searches too. No root needed.

When none works (offline and no root) the error says what to do. Every step prints one line saying which path it
took. The runner and the privilege checks are parameters, so tests drive each path without a real apt.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence

from lskd.data.registry import DatasetNotFoundError, user_data_dir

PACKAGE = "dataset-fashion-mnist"
DATA_ENV = "LSKD_DATA"


class SetupError(RuntimeError):
    """No path gave the data; the message says what to do."""


def _run(cmd: Sequence[str]) -> int:
    print("lskd setup-data: $ " + " ".join(cmd), flush=True)
    return subprocess.run(list(cmd), check=False).returncode


def apt_prefix(is_root: bool, which: Callable[[str], str | None], interactive: bool) -> list[str] | None:
    """How to call apt-get here: ``[]`` as root, ``["sudo"]`` (``sudo -n`` without a terminal, so it never waits
    for a password nobody can type) for a user with sudo, ``None`` when apt-get cannot be used."""
    if which("apt-get") is None:
        return None
    if is_root:
        return []
    if which("sudo") is not None:
        return ["sudo"] if interactive else ["sudo", "-n"]
    return None


def _found(log: Callable[[str], None]) -> pathlib.Path | None:
    from lskd.data.registry import get_builder

    try:
        folder = get_builder("fashion_mnist").resolve_root(None)
    except DatasetNotFoundError:
        return None
    log(f"lskd setup-data: Fashion-MNIST found in {folder}")
    return folder


def setup_fashion_mnist(*, run: Callable[[Sequence[str]], int] = _run, is_root: bool | None = None,
                        which: Callable[[str], str | None] = shutil.which, interactive: bool | None = None,
                        download: bool = True, log: Callable[[str], None] = print) -> pathlib.Path:
    """Make Fashion-MNIST available (see the module docstring); returns the folder that holds it."""
    from lskd.data.registry import get_builder

    if (folder := _found(log)) is not None:
        return folder
    is_root = os.geteuid() == 0 if is_root is None else is_root
    interactive = sys.stdin.isatty() if interactive is None else interactive
    prefix = apt_prefix(is_root, which, interactive)
    tried = []
    if prefix is not None:
        log(f"lskd setup-data: installing the Debian package {PACKAGE}" + (" with sudo" if prefix else " as root"))
        install = [*prefix, "apt-get", "install", "-y", "-q", PACKAGE]
        if run(install) != 0:
            log("lskd setup-data: the install failed (empty package lists?): apt-get update, then once more")
            if run([*prefix, "apt-get", "update", "-q"]) == 0:
                run(install)
        if (folder := _found(log)) is not None:
            return folder
        tried.append(f"apt-get install {PACKAGE} (failed)")
    else:
        tried.append("the Debian package (needs root or sudo, and apt-get)")
    if download:
        target = user_data_dir()
        log(f"lskd setup-data: downloading the official files into {target} (checksum-verified)")
        try:
            folder = get_builder("fashion_mnist").download(target)
        except OSError as err:
            tried.append(f"the download ({str(err).splitlines()[0]})")
        else:
            log(f"lskd setup-data: Fashion-MNIST downloaded and verified in {folder}")
            return folder
    raise SetupError(
        "lskd setup-data: could not get Fashion-MNIST; tried " + "; ".join(tried) + ".\n"
        "Offline and without root, copy the four files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; from the Debian package or the official mirror) "
        f"into a folder DIR and run with {DATA_ENV}=DIR, or into {user_data_dir() / 'FashionMNIST/raw'}; lskd checks "
        "their checksums when it reads them.")
