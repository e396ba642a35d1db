"""notebooks/ is exactly what the release step generates from solutions/, with no outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from course_lib import release

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("release")
    release.generate(output=out, root=ROOT)
    return out


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".ipynb_checkpoints" not in p.parts and "__pycache__" not in p.parts
    }


def test_committed_release_equals_a_fresh_one(fresh_release):
    committed, fresh = files_under(ROOT / "notebooks"), files_under(fresh_release)
    assert sorted(committed) == sorted(fresh), "run `make release` and commit notebooks/"
    stale = [name for name in fresh if committed[name] != fresh[name]]
    assert not stale, f"out of date (run `make release`): {stale}"


def test_release_is_deterministic(fresh_release, tmp_path):
    release.generate(output=tmp_path, root=ROOT)
    assert files_under(tmp_path) == files_under(fresh_release)


def test_released_notebooks_have_no_outputs():
    for path in (ROOT / "notebooks").glob("*/*.ipynb"):
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name


def test_release_does_not_touch_a_gradebook(fresh_release):
    assert not (ROOT / "gradebook.db").exists()
