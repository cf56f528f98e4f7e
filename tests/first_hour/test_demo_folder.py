"""tools/demo.py reruns reuse the demo's own folder and never touch anyone else's."""

from __future__ import annotations

from irframe.train.demo import DEMO_MARKER, demo_experiment


def test_demo_folder_is_created_with_its_marker(tmp_path):
    name, note = demo_experiment(tmp_path, "demo")
    assert name == "demo" and note.endswith("demo: a rerun of the demo replaces it")
    assert (tmp_path / "demo" / DEMO_MARKER).is_file()


def test_a_rerun_replaces_the_demos_own_folder(tmp_path):
    demo_experiment(tmp_path, "demo")
    (tmp_path / "demo" / "checkpoints").mkdir()
    name, note = demo_experiment(tmp_path, "demo")
    assert name == "demo" and "the previous demo run there was removed" in note
    assert not (tmp_path / "demo" / "checkpoints").exists() and (tmp_path / "demo" / DEMO_MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_a_users_folder_of_the_same_name_is_kept(tmp_path):
    own = tmp_path / "demo"
    (own / "checkpoints").mkdir(parents=True)
    (own / "notes.txt").write_text("mine")
    name, note = demo_experiment(tmp_path, "demo")
    assert name == "demo_1" and "demo is not the demo's" in note and "is kept" in note
    assert (own / "notes.txt").read_text() == "mine" and not (own / DEMO_MARKER).exists()
    # the next rerun reuses demo_1 (the demo's), still without touching demo/
    name, note = demo_experiment(tmp_path, "demo")
    assert name == "demo_1" and note.startswith(f"demo experiment folder {tmp_path / 'demo_1'}")
    assert "the previous demo run there was removed" in note
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo", "demo_1"]
