"""`masquerade ui`, driven through a real browser (Debian's chromium, by Playwright; nothing is downloaded):
the whole job on d18 and d19, and bad input that shows the CLI's one-line error while the app keeps running.
Screenshots of every tab are kept in tests/artifacts/ui/."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from masquerade.media import VideoWriter, read_frames
from tests.conftest import ROOT, need

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# where the screenshots go, and the training run's length (the README's screenshots: a longer run, into docs/ui)
SHOTS = Path(os.environ.get("MASQUERADE_UI_SHOTS", ROOT / "tests" / "artifacts" / "ui"))
ITERATIONS = int(os.environ.get("MASQUERADE_UI_ITERATIONS", "50"))
STEP_S = 600  # the longest a step may take on a 2-core CI machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory):
    """`masquerade ui` in its own process, on a fresh workspace; yields (url, workspace)."""
    ws = tmp_path_factory.mktemp("ui")
    port = free_port()
    log = open(ws / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "masquerade", "ui", "--port", str(port), "--workdir", str(ws / "work")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the UI exited: {(ws / 'server.log').read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.5)
    else:
        pytest.fail("the UI did not start listening within 120 s")
    yield f"http://127.0.0.1:{port}/", ws / "work"
    proc.terminate()
    proc.wait(30)
    log.close()


@pytest.fixture(scope="module")
def page(ui_server):
    if CHROMIUM is None:
        pytest.skip("chromium not installed (.ci/run installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
        )
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.goto(ui_server[0])
        pg.wait_for_selector("#extract_a")
        pg.errors = errors
        yield pg
        browser.close()


def tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def upload(page, elem_id: str, path) -> None:
    """Put a file into a file box, clearing the one it holds first (a filled box has no file input)."""
    box = page.locator(f"#{elem_id}")
    clear = box.get_by_role("button", name="Clear")
    if clear.count():
        clear.first.click()
    box.locator("input[type=file]").set_input_files(str(path))


def wait_text(page, selector: str, predicate, timeout: float = STEP_S) -> str:
    """The value of a status box once `predicate(value)` holds (fails with the value it last had)."""
    deadline = time.monotonic() + timeout
    value = ""
    while time.monotonic() < deadline:
        value = page.locator(f"{selector} textarea").input_value()
        if predicate(value):
            return value
        time.sleep(0.5)
    raise AssertionError(f"{selector} never became as expected; it says: {value!r}")


def no_error_shown(page) -> None:
    toasts = page.locator(".toast-body.error, .toast-wrap .error")
    assert toasts.count() == 0, toasts.first.inner_text()
    assert not page.errors, page.errors


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.slow
def test_the_whole_job_runs_in_a_browser_from_two_videos_to_a_verified_marked_swap(page, ui_server, d18, d19):
    _, work = ui_server
    # Faces: upload and extract each identity; the gallery fills
    tab(page, "Faces")
    page.locator("input[type=range]").first.fill("8")
    for side, clip in (("a", d18), ("b", d19)):
        upload(page, f"files_{side}", clip)
        page.locator(f"#extract_{side}").click()
        status = wait_text(page, f"#faces_status_{side}", lambda v: "faces kept" in v or "error" in v)
        assert "faces kept" in status, status
        assert int(status.split(" faces in the face set")[0]) >= 5, status
    assert page.locator("img").count() >= 10  # the galleries show faces
    no_error_shown(page)
    shot(page, "1-faces")

    # Train: a tiny run; the preview appears; the quality figures show when it stops
    tab(page, "Train")
    page.locator("#iters input").fill(str(ITERATIONS))
    page.locator("#train_start").click()
    status = wait_text(page, "#train_status", lambda v: "held-out" in v or "error" in v or "failed" in v)
    assert f"stopped (iterations) at iteration {ITERATIONS}" in status, status
    page.locator("#train_preview img").wait_for(timeout=30_000)
    no_error_shown(page)
    shot(page, "2-train")

    # Swap: one-frame preview, then the first second of d18; the output plays
    tab(page, "Swap")
    upload(page, "swap_input", d18)
    page.locator("#swap_end input, #swap_end textarea").first.fill("30f")
    page.locator("#swap_preview").click()
    status = wait_text(page, "#swap_status", lambda v: "rendered identity" in v or "error" in v)
    assert "rendered identity b" in status, status
    page.locator("#swap_before_after img").wait_for(timeout=30_000)
    page.locator("#swap_run").click()
    status = wait_text(page, "#swap_status", lambda v: "frames," in v or "error" in v)
    assert "watermark: " in status and "content credentials" in status, status
    video = page.locator("#video_out video")
    video.wait_for(timeout=30_000)
    played = video.evaluate(
        """async v => { v.muted = true; await v.play(); await new Promise(r => setTimeout(r, 700));
                       return [v.currentTime, v.videoWidth, v.error ? v.error.code : 0]; }"""
    )
    assert played[0] > 0 and played[1] > 0 and played[2] == 0, played
    no_error_shown(page)
    shot(page, "3-swap")

    # Verify: the swapped file (as downloaded) is marked
    outputs = sorted((work / "outputs").glob("*.swapped.mp4"))
    assert outputs, list((work / "outputs").iterdir())
    tab(page, "Verify")
    upload(page, "verify_input", outputs[0])
    page.locator("#verify_run").click()
    result = wait_text(page, "#verify_result", lambda v: "MARKED" in v or "no masquerade mark" in v or "error" in v)
    assert "MARKED as synthetic" in result, result
    assert "metadata label: synthetic" in result, result
    no_error_shown(page)
    shot(page, "4-verify")

    tab(page, "Live")
    page.locator("#live_cam").wait_for()
    shot(page, "5-live")


@pytest.mark.slow
def test_bad_input_in_the_browser_shows_the_clis_one_line_error_and_the_app_keeps_running(page, tmp_path, d18):
    need(d18)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    tab(page, "Verify")
    upload(page, "verify_input", text)
    page.locator("#verify_run").click()
    result = wait_text(page, "#verify_result", lambda v: "notes.mp4" in v, 60)
    cli = subprocess.run([sys.executable, "-m", "masquerade", "verify", str(text)], capture_output=True, text=True)
    assert cli.returncode == 2
    assert result.startswith("masquerade: error: ") and len(result.strip().splitlines()) == 1, result
    assert result.strip().rsplit("notes.mp4: ", 1)[1] == cli.stderr.strip().rsplit("notes.mp4: ", 1)[1]

    tab(page, "Faces")
    upload(page, "files_a", empty)
    page.locator("#extract_a").click()
    status = wait_text(page, "#faces_status_a", lambda v: "empty" in v, 60)
    assert status.startswith("masquerade: error: ") and len(status.splitlines()) == 1, status

    # still running: a good file is verified afterwards (d18's first 10 frames: an unmarked file is read whole)
    short = tmp_path / "d18_10f.mp4"
    with VideoWriter(short, 30, (480, 480)) as w:
        for frame in read_frames(d18, stop=10):
            w.write(frame.image)
    tab(page, "Verify")
    upload(page, "verify_input", short)
    page.locator("#verify_run").click()
    result = wait_text(page, "#verify_result", lambda v: "d18_10f.mp4" in v and "error" not in v, 120)
    assert "no masquerade mark found" in result
