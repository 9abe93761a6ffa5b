"""The course as a student sees it: JupyterLab on 127.0.0.1, driven in Debian's Chromium by Playwright.

JupyterLab runs in a temporary copy of solutions/ (it autosaves), in fast mode but with live widgets. Screenshots go to
build/browser/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from starter.config import FAST_ENV, PROJECT_ROOT, STATIC_ENV

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
INSTALL = "sudo apt-get install chromium && .venv/bin/pip install playwright"
SCREENSHOTS = PROJECT_ROOT / "build" / "browser"
NOTEBOOKS = sorted((PROJECT_ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
WIDGET_NOTEBOOK = "04_prior.ipynb"
MOVES = 20

try:
    from playwright.sync_api import Page, sync_playwright
    from playwright.sync_api import TimeoutError as PageTimeout
except ImportError:  # pragma: no cover - a developer machine without the dev extras
    sync_playwright = None

needs_browser = pytest.mark.skipif(  # in CI (.ci/run installs Chromium) a missing browser fails instead
    (CHROMIUM is None or sync_playwright is None) and not os.environ.get("CI"),
    reason=f"needs Debian's Chromium and Playwright: `{INSTALL}`",
)
STALE = "stale_kernelspec.ipynb"  # a notebook as stored before: JupyterLab renames its kernel on opening

# The page exposes JupyterLab as window.jupyterapp (--LabApp.expose_app_in_browser); these read its notebook model.
NOTEBOOK_STATE = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const cells = [...panel.content.model.cells];
    const code = cells.filter(cell => cell.type === 'code');
    const errors = code.flatMap(cell => cell.outputs.toJSON().filter(out => out.output_type === 'error')
                                          .map(out => `${out.ename}: ${out.evalue}`));
    return {kernel: panel.sessionContext.session?.kernel?.status ?? 'none', dirty: panel.context.model.dirty,
            pending: code.filter(cell => cell.executionCount === null).length, errors};
}"""
MARKDOWN_PROBLEMS = r"""() => {
    const problems = [];
    const body = parseFloat(getComputedStyle(document.querySelector('.jp-RenderedMarkdown p')).fontSize);
    for (const block of document.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown')) {
        const copy = block.cloneNode(true);
        copy.querySelectorAll('code, pre, mjx-container, mjx-assistive-mml').forEach(node => node.remove());
        if (copy.textContent.includes('$')) problems.push('raw $ in: ' + copy.textContent.slice(0, 80));
    }
    for (const heading of document.querySelectorAll('.jp-RenderedMarkdown h1, .jp-RenderedMarkdown h2')) {
        if (parseFloat(getComputedStyle(heading).fontSize) < 1.2 * body)
            problems.push(`heading at body size: ${heading.textContent.slice(0, 40)}`);
    }
    return {problems, maths: document.querySelectorAll('.jp-RenderedMarkdown mjx-container').length};
}"""
TYPESET = f"() => {{ const found = ({MARKDOWN_PROBLEMS})(); return found.maths > 0 && !found.problems.length; }}"


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> str:
    """JupyterLab serving a temporary copy of solutions/, with a token, on 127.0.0.1 only; yields its base URL."""
    home = tmp_path_factory.mktemp("lab")
    course = home / "course"
    course.mkdir()
    for notebook in NOTEBOOKS:
        shutil.copy(notebook, course / notebook.name)
    stale = json.loads(NOTEBOOKS[0].read_text())
    stale["metadata"]["kernelspec"]["display_name"] = "Python 3"
    (course / STALE).write_text(json.dumps(stale, indent=1))
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')  # no news pop-up
    token, port = secrets.token_hex(16), free_port()
    env = {
        **os.environ,
        FAST_ENV: "1",
        STATIC_ENV: "0",
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={course}",
            "--LabApp.expose_app_in_browser=True",
            "--ServerApp.terminals_enabled=False",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(home / "lab.log", "w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(url, token, server)
        yield {"url": url, "token": token, "course": course}
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_for_server(url: str, token: str, server: subprocess.Popen, timeout: float = 60) -> None:
    """Poll the server's status API until it answers."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("JupyterLab did not start within a minute")


@pytest.fixture(scope="module")
def page(lab) -> Page:
    """A Chromium page, 1400x1000, logged in to the server."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        yield context.new_page()
        browser.close()


def open_notebook(page: Page, lab: dict, name: str) -> None:
    """Open one notebook, alone (`reset`: no tabs restored from before), and wait until its kernel is idle."""
    page.goto(f"{lab['url']}/lab/tree/{name}?reset&token={lab['token']}")
    page.wait_for_function(
        "() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'",
        timeout=60_000,
    )
    page.wait_for_selector(".jp-MarkdownCell .jp-RenderedMarkdown", state="attached", timeout=30_000)


def close_all(page: Page) -> None:
    """Close every tab without saving (a clean notebook must not ask) and shut the kernels down."""
    page.evaluate("() => window.jupyterapp.commands.execute('application:close-all')")
    page.evaluate("() => window.jupyterapp.serviceManager.sessions.shutdownAll()")


def open_and_close(page: Page, lab: dict, notebook: str) -> tuple[dict, dict, bool]:
    """Open a notebook, read its rendering and state, close it unsaved; whether the file is still the same."""
    stored = (lab["course"] / notebook).read_bytes()
    open_notebook(page, lab, notebook)
    try:  # MathJax typesets after the first paint: at most 10 s, and what is still wrong then is reported
        page.wait_for_function(TYPESET, timeout=10_000)
    except PageTimeout:
        pass
    rendered, state = page.evaluate(MARKDOWN_PROBLEMS), page.evaluate(NOTEBOOK_STATE)
    if notebook == NOTEBOOKS[-1].name:
        page.screenshot(path=screenshots() / "opened.png")
    close_all(page)
    page.wait_for_timeout(500)
    return rendered, state, (lab["course"] / notebook).read_bytes() == stored


def screenshots() -> Path:
    """build/browser/, made if needed: screenshots for a person to look at (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@needs_browser
@pytest.mark.parametrize("notebook", [path.name for path in NOTEBOOKS])
def test_notebook_opens_clean_and_its_markdown_renders(page, lab, notebook):
    rendered, state, unchanged = open_and_close(page, lab, notebook)
    assert rendered["problems"] == [], rendered["problems"]
    assert rendered["maths"] > 0, "no maths was typeset"
    assert not state["dirty"], "the notebook has unsaved changes right after opening"
    assert unchanged, "opening and closing changed the file"


@needs_browser
def test_the_open_check_sees_a_stale_kernelspec(page, lab):
    """The check above can fail: a notebook stored with JupyterLab 3's kernel name opens with unsaved changes."""
    _, state, _ = open_and_close(page, lab, STALE)
    assert state["dirty"]


def run_all(page: Page, timeout: float = 240) -> dict:
    """Run every cell of the open notebook; return its state once no cell is pending or one has failed."""
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")  # no stale counts
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = page.evaluate(NOTEBOOK_STATE)
        if state["errors"] or (state["pending"] == 0 and state["kernel"] == "idle"):
            return state
        page.wait_for_timeout(500)
    raise TimeoutError(f"cells still pending after {timeout:.0f} s: {state}")


def explorer(page: Page, call: str):
    """The output area of the code cell whose source contains `call`."""
    cell = page.locator(".jp-CodeCell", has=page.locator(".jp-InputArea", has_text=call))
    return cell.locator(".jp-Cell-outputArea")


EDITOR_TITLES, SAMPLER_TITLES = [(0.05, 0.5), (0.5, 0.95)], [(0.3, 0.7)]  # where the titles of each figure are


def picture(output) -> tuple[str, np.ndarray]:
    """The PNG that an explorer shows now: its data URL and its grey levels (0 black .. 255 white)."""
    source = output.locator(".widget-output img").get_attribute("src", timeout=30_000)
    png = base64.b64decode(source.split(",", 1)[1])
    return source, np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)


def picture_problems(grey: np.ndarray, size: tuple[int, int], titled_columns: list[tuple[float, float]]) -> list[str]:
    """What is wrong with a drawn explorer figure: its size, blankness, missing titles or an empty panel."""
    problems = []
    if abs(grey.shape[0] - size[0]) > 4 or abs(grey.shape[1] - size[1]) > 4:
        problems.append(f"size {grey.shape} instead of {size}")
    if (grey < 250).mean() < 0.05:
        problems.append("blank")
    band = grey[: max(1, int(0.1 * grey.shape[0]))]
    for left, right in titled_columns:
        if (band[:, int(left * grey.shape[1]) : int(right * grey.shape[1])] < 128).sum() < 10:
            problems.append(f"no title over columns {left:.0%}-{right:.0%}")
    body = grey[int(0.1 * grey.shape[0]) :]
    for left, right in titled_columns:
        panel = body[:, int(left * grey.shape[1]) : int(right * grey.shape[1])]
        if (panel < 240).mean() < 0.2:
            problems.append(f"nothing drawn under columns {left:.0%}-{right:.0%}")
    return problems


def move_slider(page: Page, output, label: str, moves: int, titled_columns: list[tuple[float, float]]) -> list[str]:
    """Press the arrow keys on one slider `moves` times (turning at its ends); check the picture after each move."""
    slider = output.locator(".widget-slider", has=page.locator("label", has_text=label))
    slider.scroll_into_view_if_needed()  # JupyterLab leaves cells far outside the window unrendered
    handle = slider.locator(".noUi-handle, .ui-slider-handle").first
    readout = slider.locator(".widget-readout")
    low, high = (float(handle.get_attribute(name)) for name in ("aria-valuemin", "aria-valuemax"))
    area = output.element_handle()
    source, grey = picture(output)
    size, problems, direction = grey.shape, [], "ArrowRight"
    for move in range(moves):
        value = readout.inner_text()
        if float(value) in (low, high):
            direction = "ArrowRight" if float(value) == low else "ArrowLeft"
        handle.press(direction)
        page.wait_for_function(
            "([area, old]) => (area.querySelector('.widget-output img')?.src ?? old) !== old",
            arg=[area, source],
            timeout=30_000,
        )
        assert readout.inner_text() != value, f"the {label} slider did not move from {value}"
        source, grey = picture(output)
        problems += [f"{label} move {move + 1}: {problem}" for problem in picture_problems(grey, size, titled_columns)]
    return problems


@needs_browser
def test_widget_notebook_runs_and_its_explorers_redraw(page, lab):
    open_notebook(page, lab, WIDGET_NOTEBOOK)
    state = run_all(page)
    assert state["errors"] == [], state["errors"]
    assert page.locator("text=Error displaying widget").count() == 0
    editor, sampler = explorer(page, "code_grid_editor("), explorer(page, "temperature_explorer(")
    problems = []
    for label in ("row", "column", "code"):
        problems += move_slider(page, editor, label, MOVES, EDITOR_TITLES)
    editor.screenshot(path=screenshots() / "code_grid_editor.png")
    problems += move_slider(page, sampler, "temperature", MOVES, SAMPLER_TITLES)
    sampler.screenshot(path=screenshots() / "temperature_explorer.png")
    assert problems == []


def grey_png(figure) -> np.ndarray:
    """A matplotlib figure as the inline backend sends it (PNG, tight box), in grey levels."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return np.asarray(Image.open(buffer).convert("L"), dtype=np.float32)


def test_picture_check_passes_the_editor_figure_and_names_broken_ones():
    """The picture check is tested like the course's checks: the real figure passes, each broken one fails."""
    import torch

    from starter.models.vq import VQVAE
    from starter.widgets import _grid_and_digit

    torch.manual_seed(0)
    vqvae = VQVAE(num_codes=16, code_dim=4, hidden=8).eval()
    figure = _grid_and_digit(vqvae, torch.randint(16, (7, 7)), marked=(3, 3))
    good = grey_png(figure)
    assert picture_problems(good, good.shape, EDITOR_TITLES) == []
    for axes in figure.axes:
        axes.set_title(" ")  # the space a title takes, with nothing drawn in it
    untitled = grey_png(figure)
    assert any("no title" in problem for problem in picture_problems(untitled, good.shape, EDITOR_TITLES))
    half = good.copy()
    half[int(0.15 * len(half)) :, good.shape[1] // 2 :] = 255
    assert any("nothing drawn" in problem for problem in picture_problems(half, good.shape, EDITOR_TITLES))
    assert "blank" in picture_problems(np.full_like(good, 255), good.shape, EDITOR_TITLES)
    assert any("size" in problem for problem in picture_problems(good[:200], good.shape, EDITOR_TITLES))
