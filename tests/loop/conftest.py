"""The run tests' fixtures (a small real SuperTuxKart project, the cached tiny PaliGemma)."""
from tests.runs.conftest import project, tiny_paligemma  # noqa: F401
