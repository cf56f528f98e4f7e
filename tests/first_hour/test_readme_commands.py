"""The README's quick start and first-hour commands, run as written from a copy of the repository
with no ``../shared`` beside it (training shrunk by ``--set``): every file they read ships with the
repository or is made by an earlier command."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTIONS = ("## Quick start", "## The two commands", "### The first hour")
# Not run: a server that never returns, and the test suite itself (this test is part of it).
NOT_RUN = ("tensorboard --logdir", "python -m pytest")
# The demo trains 300 iterations; the README's command shrunk to a few (the same code path).
SHRINK = {"python tools/demo.py": [
    "--set", "train.total_iter=30", "train.warmup_iter=0", "val.freq=30", "logger.checkpoint_freq=30",
    "logger.print_freq=10", "datasets.train.batch_size=2", "datasets.train.gt_size=32", "logger.tensorboard=false",
]}


def readme_commands(text: str = README) -> list[str]:
    """The shell commands of the ```bash blocks of the README's quick start and first hour, in order
    (continuation lines joined, comments dropped, a command given twice run once)."""
    commands: list[str] = []
    for heading in SECTIONS:
        section = text.split(f"\n{heading}", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
        for block in re.findall(r"```bash\n(.*?)```", section, re.DOTALL):
            for line in block.replace("\\\n", " ").splitlines():
                command = " ".join(shlex.split(line, comments=True))
                if command and command not in commands:
                    commands.append(command)
    return commands


def _copy_repository(dest: Path) -> Path:
    """The repository's tracked and untracked (not ignored) files, as a clone would have them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True,
        check=True,
    ).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if not src.exists() and not src.is_symlink():  # deleted in the working tree
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            target.symlink_to(os.readlink(src))
        elif src.is_file():
            shutil.copy2(src, target)
    return dest


def test_the_readme_lists_the_commands_this_test_runs():
    commands = readme_commands()
    assert "irframe zoo" in commands and "irframe list archs" in commands
    assert any(c.startswith("python tools/degrade.py samples/parrot.png noisy.png") for c in commands)
    assert not [c for c in commands if "../shared" in c or "$IRFRAME_SHARED" in c]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="git lists the repository's files")
def test_readme_commands_run_on_a_copy_without_shared(tmp_path):
    clone = _copy_repository(tmp_path / "somewhere" / "irframe")
    assert not (clone.parent / "shared").exists()
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if k not in ("IRFRAME_SHARED", "IRFRAME_ZOO", "PYTHONPATH")}
    env.update(PYTHONPATH=str(clone), OMP_NUM_THREADS="1", PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
    ran: dict[str, float] = {}
    for command in readme_commands():
        if command.startswith(NOT_RUN):
            continue
        argv = shlex.split(command)
        argv += SHRINK.get(command, [])
        if argv[0] == "python":
            argv[0] = sys.executable
        start = time.perf_counter()
        run = subprocess.run(argv, cwd=clone, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, f"$ {command}\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
        ran[command] = time.perf_counter() - start
    assert len(ran) >= 10, ran
    # the copy's own package and zoo were used, not this checkout's
    probe = subprocess.run([sys.executable, "-c", "import irframe; print(irframe.__file__)"], cwd=clone, env=env,
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip().startswith(str(clone))
    out = clone / "results" / "quickstart"
    assert sorted(p.name for p in out.glob("*.png")) == ["noisy.png", "page.png", "parrot_x2.png"]
    from irframe.data.io import imread

    assert imread(out / "parrot_x2.png").shape == (256, 256, 3)
    # the first hour restores noisy images, the very inputs tools/test.py scored (its "degraded input" row)
    clean, noisy = clone / "experiments" / "demo_data" / "val", clone / "experiments" / "demo_data" / "val_noisy"
    restored = clone / "results" / "demo_restored"
    names = sorted(p.name for p in clean.glob("*.png"))
    assert names and sorted(p.name for p in restored.glob("*.png")) == names
    noisy_psnr = [_psnr(imread(noisy / name), imread(clean / name)) for name in names]
    assert max(noisy_psnr) < 22  # sigma 25: about 20 dB
    from irframe.evaluate.leaderboard import Leaderboard

    board = Leaderboard.load(clone / "results" / "leaderboard.json")
    assert board.baseline_score("demo_val", "PSNR-RGB crop0 8bit") == pytest.approx(np.mean(noisy_psnr), abs=0.01)
    assert all(not np.array_equal(imread(restored / n), imread(noisy / n)) for n in names)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))
