"""tools/demo.py's logic, shortened: generated images, options/demo.yml, the PSNR summary line."""

from __future__ import annotations

from pathlib import Path

from irframe.train import demo

OPTIONS = Path(__file__).resolve().parents[2] / "options" / "demo.yml"


def test_demo_generates_data_and_reports_both_psnrs(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(demo, "TRAIN_IMAGES", 4)
    data = tmp_path / "data"
    status = demo.main([
        "--data", str(data), "-opt", str(OPTIONS), "--set", "train.total_iter=3", "train.warmup_iter=0",
        "val.freq=3", "logger.checkpoint_freq=3", "logger.progress_bar=false", "logger.tensorboard=false",
        "datasets.train.batch_size=2", "datasets.train.gt_size=32", f"path.experiments_root={tmp_path / 'exp'}",
    ])
    out = capsys.readouterr().out
    assert status == 0
    assert len(list((data / "train").glob("*.png"))) == 4 and len(list((data / "val").glob("*.png"))) == 4
    assert "generating 4 synthetic images" in out
    summary = [line for line in out.splitlines() if line.startswith("demo: restored PSNR")]
    assert summary and "vs degraded input" in summary[0]
    # a second run reuses the images and replaces the demo's own folder instead of piling up demo_1, ...
    status = demo.main(["--data", str(data), "-opt", str(OPTIONS), "--set", "train.total_iter=1", "val.freq=1",
                        "logger.progress_bar=false", "logger.tensorboard=false", "datasets.train.batch_size=2",
                        "datasets.train.gt_size=32", f"path.experiments_root={tmp_path / 'exp'}"])
    out = capsys.readouterr().out
    assert status == 0 and "generating" not in out and "the previous demo run there was removed" in out
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()) == ["demo"]
