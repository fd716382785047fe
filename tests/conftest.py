import pytest

from voxface.testing import make_tiny_voxceleb


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A tiny VoxCeleb1-layout tree (with one corrupt WAV and one corrupt JPG) and its protocol folder."""
    return make_tiny_voxceleb(tmp_path_factory.mktemp("tiny"))
