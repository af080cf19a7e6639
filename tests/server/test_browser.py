"""The Prefect UI renders the on-demand deployment's run form, in a real headless Chromium.

Debian's ``chromium`` driven by the ``playwright`` package (no browser download): the page
``/deployments/deployment/<id>/run`` must show a form entry for every top-level setting.
The screenshot is kept under ``tests/server/artifacts/`` (or ``$DAXA_XMM_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from daxa_xmm.config import ProcessingConfig
from tests.server.conftest import Served

pytestmark = [pytest.mark.server, pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
ARTIFACTS = Path(os.environ.get("DAXA_XMM_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))


def test_run_page_shows_the_form_with_every_setting(served: Served) -> None:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        why = f"{CHROMIUM} is missing: run .ci/install-browser.sh (apt-get install -y chromium)"
        if os.environ.get("CI"):  # CI installs it: missing there is a failure, not a skip
            pytest.fail(why)
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    url = f"{served.server.url}/deployments/deployment/{served.on_demand['id']}/run"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "deployment-run-form.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, wait_until="domcontentloaded", timeout=60_000)
            try:
                page.get_by_text("num_cores").first.wait_for(timeout=60_000)
            finally:  # the screenshot is kept whatever happened: it shows what the user would see
                text = page.inner_text("body")
                page.screenshot(path=str(shot), full_page=True)
                print(f"\nscreenshot of the run form: {shot}\npage text: {text[:1500]}")
        finally:
            browser.close()
    assert "Can't connect to Server API" not in text
    # every setting, except the switch a server has no use for (issue 11.6)
    missing = [name for name in ProcessingConfig.model_fields if name not in text and name != "disable_progress"]
    assert not missing, f"form entries missing from the page: {missing}"
    assert "disable_progress" not in text
    assert "Filter Lo En" not in text  # one title style throughout (section fields by name too)
    # descriptions from the flow's docstring reach the form
    assert "at most this many SAS processes at once" in text
    assert shot.stat().st_size > 10_000
