"""JupyterLab in headless Chromium: notebook 00 renders, runs, and its widget responds.

Needs Debian's Chromium (`.ci/run` installs it); skipped with the reason where it is absent.
"""

from __future__ import annotations

import shutil

import pytest
from labserver import running_lab

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")

FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with running_lab(tmp_path_factory.mktemp("browser")) as lab, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(lab.url("/lab/tree/00_setup/00_setup.ipynb"))
        page.wait_for_selector(".jp-Notebook .jp-MarkdownOutput h1")
        yield page
        browser.close()


def test_notebook_00_renders_in_the_browser(page):
    heading = page.locator(".jp-Notebook .jp-MarkdownOutput h1").first.inner_text()
    assert heading.startswith("00 · Setup")
    # JupyterLab renders cells lazily, and only those near the viewport: wait for the first few
    cells = page.locator(".jp-Notebook .jp-Cell")
    cells.nth(2).wait_for(state="attached")
    assert cells.count() >= 3


def test_running_notebook_00_shows_the_doctor_and_a_working_widget(page):
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    page.locator(".jp-Notebook").click()
    page.keyboard.press("Escape")
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

    page.wait_for_selector("text=all good: the course is ready", timeout=120_000)
    # JupyterLab renders only the cells near the viewport: bring the widget into view first.
    select = page.locator(".widget-dropdown select").first
    select.wait_for(state="attached", timeout=120_000)
    select.scroll_into_view_if_needed()
    table = page.locator("table.course-preset").first
    assert table.get_attribute("data-mode") == "quick"

    select.select_option("gpu")
    gpu_table = page.locator("table.course-preset[data-mode='gpu']").first
    gpu_table.wait_for(state="attached")
    assert "64" in gpu_table.text_content()
