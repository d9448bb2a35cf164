"""Hydra's Optuna-sweeper tests (vendored beside this file): the ones that run an example app as
a subprocess take several seconds each, so they are marked slow (they still run in CI)."""

from pathlib import Path

import pytest

SUBPROCESS_TESTS = (
    "test_optuna_example",
    "test_example_with_grid_sampler",
    "test_optuna_multi_objective_example",
    "test_optuna_custom_search_space_example",
    "test_failure_rate",
    "test_example_with_removed_motpe",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.parent == Path(__file__).parent and item.originalname in SUBPROCESS_TESTS:
            item.add_marker(pytest.mark.slow)
