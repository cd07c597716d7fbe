import pytest

from sniper_test_data import register_dataset, tiny_records


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return register_dataset("sniper_test_tiny", tiny_records(root))
