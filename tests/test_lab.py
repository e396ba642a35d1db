"""`make lab` really serves: JupyterLab starts headless, answers /lab and lists the notebooks."""

from __future__ import annotations

import json

import pytest
from labserver import get, running_lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with running_lab(tmp_path_factory.mktemp("lab")) as lab:
        yield lab


def test_lab_serves_the_learners_copy_of_the_notebooks(lab):
    status, body = get(lab.url("/lab"))
    assert status == 200 and b"JupyterLab" in body

    status, body = get(lab.url("/api/contents"))
    assert status == 200
    names = {item["name"] for item in json.loads(body)["content"]}
    assert "00_setup" in names

    status, body = get(lab.url("/api/contents/00_setup/00_setup.ipynb"))
    assert status == 200
    notebook = json.loads(body)["content"]
    assert notebook["metadata"]["kernelspec"]["name"] == "diffusion-course"
    assert (lab.workspace / "00_setup" / "00_setup.ipynb").exists()


def test_lab_offers_the_course_kernel(lab):
    status, body = get(lab.url("/api/kernelspecs"))
    assert status == 200 and "diffusion-course" in json.loads(body)["kernelspecs"]


def test_lab_refuses_requests_without_the_token(lab):
    status, _ = get(f"{lab.base}/api/contents")
    assert status == 403
