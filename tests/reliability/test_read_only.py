"""Folders a run cannot write: one line naming the folder, before anything is built or written.

* ``path.experiments_root`` a read-only folder: ``path.experiments_root: ... is not writable``;
* ``--resume auto`` into a read-only experiment: ``cannot resume in this experiment folder
  (Permission denied)`` (it used to train until the first write, then a ``PermissionError``
  traceback).

Permissions do not bind root, so under root the runs are made as user ``nobody`` (``setpriv``),
in a scratch folder that user can reach.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

NOBODY = 65534


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A folder user ``nobody`` can reach (pytest's own tmp_path is private to root)."""
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("root without setpriv: permissions cannot be tested")
    if os.geteuid() == 0 and not _nobody_can_run_the_harness():
        pytest.skip("user nobody cannot read this checkout or its Python (a private folder): cannot test permissions")
    path = Path(tempfile.mkdtemp(prefix="irframe-ro-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for p in [path, *path.rglob("*")]:
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
        shutil.rmtree(path, ignore_errors=True)


def _nobody_can_run_the_harness() -> bool:
    """Whether user ``nobody`` can start this Python and read the harness (a checkout inside a
    private temporary folder, as a fresh CI clone may be, is out of its reach)."""
    harness = Path(__file__).with_name("train_harness.py")
    probe = [
        "setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups",
        sys.executable, "-c", f"open({str(harness)!r}).close(); import irframe",
    ]
    return subprocess.run(probe, capture_output=True, timeout=120, check=False).returncode == 0


def unprivileged(tools, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The harness as an ordinary user (``nobody`` when the tests run as root)."""
    prefix = ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"] if os.geteuid() == 0 else []
    return subprocess.run(
        [*prefix, sys.executable, str(tools.HARNESS), *args], cwd=cwd, env=tools.env(HOME=str(cwd)),
        capture_output=True, text=True, timeout=tools.TIMEOUT, check=False,
    )


def read_only(folder: Path) -> None:
    for p in [folder, *folder.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(stat.S_IMODE(mode) & ~0o222)


def setup(tools, scratch: Path, experiments: Path) -> Path:
    from irframe.train.synthetic import write_textured_images

    data = scratch / "data"
    write_textured_images(data / "train", 4, 32, seed=0)
    for p in [data, *data.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    images = type("Images", (), {"train": data / "train", "val": data / "train"})
    opts = tools.train_options(images, experiments, "run", val=None)
    opts["train"]["total_iter"] = 2
    cfg = scratch / "run.yml"
    cfg.write_text(yaml.safe_dump(opts))
    cfg.chmod(0o644)
    return cfg


def test_read_only_experiments_root_is_one_line(tools, scratch) -> None:
    experiments = scratch / "experiments"
    experiments.mkdir(mode=0o555)
    experiments.chmod(0o555)
    cfg = setup(tools, scratch, experiments)
    proc = unprivileged(tools, ["-opt", str(cfg)], scratch)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and "path.experiments_root" in lines[0] and "not writable" in lines[0], proc.stderr
    assert list(experiments.iterdir()) == []


def test_resume_into_a_read_only_experiment_is_one_line(tools, scratch) -> None:
    experiments = scratch / "experiments"
    cfg = setup(tools, scratch, experiments)
    first = tools.run(tools.HARNESS, ["-opt", str(cfg)], scratch)
    assert first.returncode == 0, first.stderr[-3000:]
    read_only(experiments)
    before = {p: p.stat().st_mtime_ns for p in experiments.rglob("*")}
    proc = unprivileged(tools, ["-opt", str(cfg), "--resume", "auto", "--set", "train.total_iter=4"], scratch)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert str(experiments / "run") in lines[0] and "cannot resume in this experiment folder" in lines[0], lines[0]
    assert {p: p.stat().st_mtime_ns for p in experiments.rglob("*")} == before
