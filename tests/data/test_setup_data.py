"""``lskd setup-data`` on any machine: data already there; root without sudo (the Debian package, with
``apt-get update`` when the package lists are empty); a user with sudo; a user with neither (the checksum-
verified download into lskd's user data folder, which the loader then finds); offline and no root (an error that
says what to do). apt is a stand-in that installs the real Debian files, so every path ends in files lskd
verifies when it reads them."""

from __future__ import annotations

import pathlib
import shutil

import pytest
from test_data import DEBIAN, FM_FILES, _official_gz, needs_debian

import lskd.data.download as dl
import lskd.data.fashion_mnist as fm
from lskd.cli import main as lskd_main
from lskd.data import build_dataset
from lskd.data.setup import SetupError, apt_prefix, setup_fashion_mnist

pytestmark = needs_debian


@pytest.fixture(autouse=True)
def machine(tmp_path, monkeypatch):
    """No Fashion-MNIST anywhere: an empty Debian folder, no LSKD_DATA, an empty user data folder, no mirror."""
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "usr-share-datasets/fashion-mnist")
    monkeypatch.delenv("LSKD_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setitem(dl.load_checksums()["fashion_mnist"], "mirrors", [(tmp_path / "no-mirror").as_uri() + "/"])
    return tmp_path


class FakeApt:
    """apt-get that installs the real Debian files; with ``lists_empty`` the first install fails until
    ``apt-get update`` has run (as on a fresh container)."""

    def __init__(self, lists_empty: bool = False) -> None:
        self.lists_empty, self.calls = lists_empty, []

    def __call__(self, cmd) -> int:
        self.calls.append(list(cmd))
        args = [a for a in cmd if a not in ("sudo", "-n")]
        if args[:2] == ["apt-get", "update"]:
            self.lists_empty = False
            return 0
        if args[:2] == ["apt-get", "install"]:
            if self.lists_empty:
                return 100  # E: Unable to locate package dataset-fashion-mnist
            shutil.copytree(DEBIAN, fm.DEBIAN_DIR)
            return 0
        raise AssertionError(cmd)


def which(*present: str):
    return lambda name: f"/usr/bin/{name}" if name in present else None


def test_data_already_present_installs_nothing(machine, monkeypatch, capsys):
    monkeypatch.setenv("LSKD_DATA", str(DEBIAN))
    apt = FakeApt()
    assert setup_fashion_mnist(run=apt, is_root=True, which=which("apt-get")) == DEBIAN
    assert apt.calls == [] and "found in" in capsys.readouterr().out


def test_root_without_sudo_on_empty_apt_lists_updates_and_installs(machine, capsys):
    apt = FakeApt(lists_empty=True)
    folder = setup_fashion_mnist(run=apt, is_root=True, which=which("apt-get"))  # no sudo on the machine
    assert apt.calls == [["apt-get", "install", "-y", "-q", "dataset-fashion-mnist"], ["apt-get", "update", "-q"],
                         ["apt-get", "install", "-y", "-q", "dataset-fashion-mnist"]]
    assert folder == fm.DEBIAN_DIR and len(build_dataset("fashion_mnist", "test")) == 10_000
    out = capsys.readouterr().out
    assert "as root" in out and "apt-get update" in out


def test_user_with_sudo_installs_through_sudo(machine):
    apt = FakeApt()
    setup_fashion_mnist(run=apt, is_root=False, which=which("apt-get", "sudo"), interactive=True)
    assert apt.calls == [["sudo", "apt-get", "install", "-y", "-q", "dataset-fashion-mnist"]]
    assert apt_prefix(False, which("apt-get", "sudo"), interactive=False) == ["sudo", "-n"]  # never waits on a prompt


def test_user_without_root_or_sudo_downloads_verified_files_the_loader_finds(machine, monkeypatch, capsys):
    mirror = machine / "mirror"
    mirror.mkdir()
    for name in FM_FILES:
        (mirror / name).write_bytes(_official_gz(name))
    monkeypatch.setitem(dl.load_checksums()["fashion_mnist"], "mirrors", [mirror.as_uri() + "/"])
    apt = FakeApt()
    folder = setup_fashion_mnist(run=apt, is_root=False, which=which("apt-get"))
    assert apt.calls == [] and folder == machine / "xdg/lskd/FashionMNIST/raw"
    assert fm.FashionMNIST().resolve_root(None) == folder  # the default config finds it with no setting
    assert len(build_dataset("fashion_mnist", "train")) == 60_000
    assert "downloaded and verified" in capsys.readouterr().out


def test_offline_and_no_root_says_what_to_do(machine):
    with pytest.raises(SetupError) as err:
        setup_fashion_mnist(run=FakeApt(), is_root=False, which=which())
    message = str(err.value)
    assert "the Debian package (needs root or sudo" in message and "the download (" in message
    assert "LSKD_DATA=DIR" in message and str(machine / "xdg/lskd/FashionMNIST/raw") in message


def test_a_failing_apt_falls_back_to_the_download(machine, monkeypatch):
    mirror = machine / "mirror"
    mirror.mkdir()
    for name in FM_FILES:
        (mirror / name).write_bytes(_official_gz(name))
    monkeypatch.setitem(dl.load_checksums()["fashion_mnist"], "mirrors", [mirror.as_uri() + "/"])
    folder = setup_fashion_mnist(run=lambda cmd: 100, is_root=True, which=which("apt-get"))
    assert folder == machine / "xdg/lskd/FashionMNIST/raw"


def test_cli_reports_the_failure_in_one_line(machine):
    with pytest.raises(SystemExit, match="could not get Fashion-MNIST"):
        lskd_main(["setup-data", "--no-apt"])
    assert not pathlib.Path(machine / "xdg/lskd/FashionMNIST/raw/train-images-idx3-ubyte.gz").exists()
