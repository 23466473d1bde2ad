import pytest
import torch


@pytest.fixture(autouse=True)
def _progress_in_a_temporary_file(tmp_path, monkeypatch):
    """A passed check records the learner's progress; the tests' passes must not land in a home folder."""
    monkeypatch.setenv("DIFFUSION_LAB_PROGRESS", str(tmp_path / "progress.json"))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
