"""The README's first hour, shortened: demo -> tools/test.py on its checkpoint -> tools/degrade.py ->
tools/infer.py on the noisy images (tests/first_hour/test_readme_commands.py runs the commands as written)."""

from __future__ import annotations

from pathlib import Path

from irframe.data.cli import degrade_main
from irframe.evaluate.cli import benchmark_main, infer_main
from irframe.evaluate.leaderboard import BASELINE_ROW, Leaderboard
from irframe.train import demo

OPTIONS = Path(__file__).resolve().parents[2] / "options" / "demo.yml"
FAST = [
    "train.total_iter=2", "train.warmup_iter=0", "val.freq=2", "logger.checkpoint_freq=2", "logger.progress_bar=false",
    "logger.tensorboard=false", "datasets.train.batch_size=2", "datasets.train.gt_size=32",
]


def test_demo_then_test_then_infer_as_the_readme_says(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the README's relative paths: experiments/..., results/...
    monkeypatch.setattr(demo, "TRAIN_IMAGES", 4)
    monkeypatch.setattr(demo, "IMAGE_SIZE", 48)
    assert demo.main(["-opt", str(OPTIONS), "--set", *FAST]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("generating") and "threads: " in out and "demo: restored PSNR" in out
    best = Path("experiments/demo/checkpoints/best")
    assert best.is_dir() and Path("experiments/demo/tensorboard").exists() is False  # tensorboard off here

    # python tools/test.py -opt options/demo.yml --checkpoint experiments/demo/checkpoints/best
    assert benchmark_main(["-opt", str(OPTIONS), "--checkpoint", str(best), "--device", "cpu", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "scoring with the file's val.metrics (PSNR, SSIM)" in captured.err
    board = Leaderboard.load(Path("results/leaderboard.json"))
    assert list(board.models) == ["demo"]
    (set_name, psnr_id), _ = board.columns()[:2]
    assert set_name == "demo_val" and board.score("demo", set_name, psnr_id) is not None
    assert board.baseline_score(set_name, psnr_id) is not None
    assert f"| *{BASELINE_ROW}* |" in captured.out  # the table printed at the end

    # python tools/degrade.py experiments/demo_data/val experiments/demo_data/val_noisy --noise 25
    assert degrade_main(["experiments/demo_data/val", "experiments/demo_data/val_noisy", "--noise", "25"]) == 0
    # python tools/infer.py --checkpoint experiments/demo/checkpoints/best --input ... --output ...
    assert infer_main(["--checkpoint", str(best), "--input", "experiments/demo_data/val_noisy", "--output",
                       "results/demo_restored", "--device", "cpu", "--no-progress"]) == 0
    assert len(list(Path("results/demo_restored").glob("*.png"))) == demo.VAL_IMAGES

    # a rerun of the demo reuses its folder
    assert demo.main(["-opt", str(OPTIONS), "--set", *FAST]) == 0
    assert sorted(p.name for p in Path("experiments").iterdir()) == ["demo", "demo_data"]
