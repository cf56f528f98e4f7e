"""The evaluation fixtures (toy arch with known outputs, a tiny paired set, option writer), shared."""

from tests.evaluate.conftest import paired_set, toy_arch, write_options  # noqa: F401 (pytest fixtures)
