"""Strict component arguments: **kwargs constructors, unannotated parameters, booleans vs numbers,
nested components and path arguments, every problem at once."""

from __future__ import annotations

import re
from typing import Annotated, Any

import pytest

from irframe.cli import main as cli_main
from irframe.errors import OptionsError, RegistryError
from irframe.registry import ExistingFolder, Nested, Registry, kwarg_problems


def test_kwargs_constructor_is_still_checked_against_its_named_parameters():
    reg = Registry("strict-kw-test")

    @reg.register()
    class OfficialArch:  # how official code is often written: no hints, **kwargs swallowing the rest
        def __init__(self, embed_dim=48, bias=False, **kwargs):
            self.embed_dim, self.bias = embed_dim, bias

    with pytest.raises(OptionsError, match=r"model\.embed_dm: unknown key for OfficialArch; did you mean 'embed_dim'"):
        reg.build({"type": "OfficialArch", "embed_dm": 24}, path="model")
    with pytest.raises(OptionsError, match=r"model\.embed_dim: expected an integer like the default 48, got '24'"):
        reg.build({"type": "OfficialArch", "embed_dim": "24"}, path="model")
    assert reg.build({"type": "OfficialArch", "embed_dim": 24}).embed_dim == 24
    assert reg.entry("OfficialArch").checked


def test_extra_keys_opt_in_accepts_other_keys_and_is_marked_in_list(registry_sandbox, capsys):
    from irframe.registry import LOSSES

    class LooseLoss:
        def __init__(self, weight_map=None, **kwargs):
            self.kwargs = kwargs

    LOSSES.register("LooseLossTest", LooseLoss, extra_keys=True)
    built = LOSSES.build({"type": "LooseLossTest", "anything": 1})
    assert built.kwargs == {"anything": 1}
    assert not LOSSES.entry("LooseLossTest").checked
    assert cli_main(["list", "loss"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  LooseLossTest +\[[^]]+\] \*$", out, re.M), out
    assert "* arguments not checked strictly" in out
    assert "L1Loss" in out and "L1Loss" not in [line.split()[0] for line in out.splitlines() if line.endswith(" *")]


@pytest.mark.parametrize(
    ("default", "good", "bad"),
    [
        (48, [0, -3], [1.5, True, "48", None]),
        (1e-3, [2, 2e-4], [True, "2e-4"]),
        (False, [True], [1, "yes"]),
        ("a", ["b"], [3, ["a"]]),
        ((1, 2), [[1, 2], (3,)], ["1,2", 3]),
        ({"k": 1}, [{}], [[1]]),
    ],
)
def test_unannotated_values_are_checked_against_the_default_type(default, good, bad):
    def component(x=default):
        return x

    for value in good:
        assert kwarg_problems(component, {"x": value}, where="c")[1] == [], value
    for value in bad:
        problems = kwarg_problems(component, {"x": value}, where="c")[1]
        assert len(problems) == 1 and problems[0].startswith("c.x: expected "), (value, problems)


def test_none_default_is_unchecked():
    def component(x=None):
        return x

    assert kwarg_problems(component, {"x": [1, "any"]}, where="c")[1] == []


def test_booleans_are_not_numbers_but_floats_take_ints():
    def component(n: int = 1, lr: float = 1e-3, sizes: list[int] | None = None, flag: bool = False, v: int | bool = 0):
        return n

    problems = kwarg_problems(component, {"n": True, "lr": False, "sizes": [8, True]}, where="c")[1]
    assert [p.split(":")[0] for p in problems] == ["c.n", "c.lr", "c.sizes"]
    assert all("booleans are not numbers" in p for p in problems)
    out, problems = kwarg_problems(component, {"n": 3, "lr": 2, "sizes": [8], "flag": True, "v": True}, where="c")
    assert problems == [] and out["lr"] == 2


def test_every_problem_of_a_mapping_at_once():
    reg = Registry("strict-many-test")

    @reg.register()
    def thing(width: int, depth: int = 2, name: str = "x"):
        return width

    with pytest.raises(OptionsError) as exc:
        reg.build({"type": "thing", "widht": 1, "depth": "deep", "name": 5}, path="model")
    lines = str(exc.value).splitlines()
    assert lines[0] == "4 problems:"
    assert [line.strip().split(":")[0] for line in lines[1:]] == ["model.widht", "model.depth", "model.name", "model"]


def test_engine_supplied_keys_cannot_be_set():
    def optimizer(params: Any, lr: float = 1e-3):
        return params

    problems = kwarg_problems(optimizer, {"params": [1]}, where="train.optim", skip={"params"})[1]
    assert problems == ["train.optim.params: set by the engine, not by the options"]


def test_nested_components_and_paths_are_checked_with_full_paths(tmp_path):
    parts = Registry("strict-part-test")
    whole = Registry("strict-whole-test")

    @parts.register()
    def Part(size: int = 1):
        return size

    @whole.register()
    def Whole(
        root: ExistingFolder,
        part: Annotated[dict[str, Any] | list[dict[str, Any]], Nested("strict-part-test")],
        named: Annotated[dict[str, dict[str, Any]] | None, Nested("strict-part-test", keyed=True)] = None,
    ):
        return root

    cfg = {
        "type": "Whole",
        "root": str(tmp_path / "missing"),
        "part": [{"type": "Part", "size": 2}, {"type": "Part", "sise": 3}, {"type": "Prat"}],
        "named": {"a": {"type": "Part", "size": True}},
    }
    problems = whole.problems(cfg, "datasets.train")
    assert problems[0] == f"datasets.train.root: folder not found: {tmp_path / 'missing'}"
    assert problems[1].startswith("datasets.train.part.1.sise: unknown key for Part; did you mean 'size'?")
    assert problems[2].startswith("datasets.train.part.2.type: unknown strict-part-test 'Prat'; did you mean 'Part'?")
    assert problems[3].startswith("datasets.train.named.a.size: expected int, got the boolean True")
    assert len(problems) == 4
    assert whole.problems({**cfg, "root": str(tmp_path), "part": {"type": "Part"}, "named": None}, "d") == []
    assert whole.problems({**cfg, "root": str(tmp_path / "x")}, "d", paths=False)[0].startswith("d.part.1.sise")


def test_suggestions_only_for_close_names():
    reg = Registry("strict-suggest-test")
    for name in ("Restormer", "PromptIR", "IPT"):
        reg.register(name, type(name, (), {}))
    with pytest.raises(RegistryError) as exc:
        reg.get("Transformer")
    assert "did you mean" not in str(exc.value)
    with pytest.raises(RegistryError, match="did you mean 'Restormer'"):
        reg.get("Restormr")


def test_names_with_a_colon_are_refused():
    reg = Registry("strict-colon-test")
    with pytest.raises(RegistryError, match="without ':'"):
        reg.register("a:b", type("X", (), {}))
