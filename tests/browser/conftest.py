"""A real browser for the admin walk: Playwright driving Debian's ``chromium``, headless.

No browser is ever downloaded (``playwright install`` cannot reach its host here):
Playwright launches the system binary. When it is missing, the session installs
it with apt-get; the tests are skipped only where that cannot be done, saying why.
"""

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from django.db import connections
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",  # root in CI and containers
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
]
VIEWPORT = {"width": 1280, "height": 900}
APT_TIMEOUT_SECONDS = 900


def _apt_get(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=300", *args],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True,
        text=True,
        timeout=APT_TIMEOUT_SECONDS,
        check=False,
    )


def _install_chromium() -> str | None:
    """apt-get install chromium; None when it worked, else why it could not."""
    if shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing and there is no apt-get to install it"
    if os.geteuid() != 0:
        return f"{CHROMIUM} is missing and installing it needs root (apt-get install chromium)"
    installed = _apt_get("install", "-y", "chromium")
    if installed.returncode != 0:  # the package lists may be missing or stale
        _apt_get("update")
        installed = _apt_get("install", "-y", "chromium")
    if installed.returncode != 0 or not os.access(CHROMIUM, os.X_OK):
        tail = (installed.stderr or installed.stdout).strip().splitlines()[-3:]
        return f"apt-get install chromium failed: {' / '.join(tail)}"
    return None


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        why_not = _install_chromium()
        if why_not:
            pytest.skip(why_not)
    return CHROMIUM


@pytest.fixture
def browser(chromium_executable: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    # Playwright's sync API keeps an event loop in this thread while it runs; the
    # test's own ORM calls stay synchronous, one at a time. Only for this test.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=LAUNCH_ARGS
        )
        yield browser
        # The connection of the ORM calls made while Playwright ran is one that
        # pytest-django's teardown does not see: left open, it blocks the test database's drop.
        connections.close_all()
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(15_000)
    # The admin's navigation sidebar starts folded: the pages (and screenshots) get the width.
    context.add_init_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
    page = context.new_page()
    yield page
    context.close()
