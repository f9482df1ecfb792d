"""The web page at ``/``, driven in headless Chromium against the real server.

Playwright drives Debian's ``chromium`` (``executable_path``; no browser download). The
server is the session's real ``ingot serve`` with the default models (SmolLM2 chat,
MiniLM embeddings): the page creates a collection, uploads a real PDF, waits for the
ingestion job in the page, asks about a fact on page 1, and must show a streamed answer
with a citation naming the file and its page (then a follow-up citing page 2). The PDF is
docling's ``multi_page.pdf`` from ../shared/data, or, when that is absent, a stand-in
written by tests/docgen.py under the same name with the same facts on the same pages.
Screenshots go to the test's tmp_path (ui.png, ui-follow-up.png). Also: the static files
and their headers, escaping of untrusted text, and the API-key flow with keys switched on.
Without Playwright or Chromium the browser tests skip and say why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

import docgen
from kbutil import given_passages
from conftest import SHARED_DATA

try:
    from playwright import sync_api as playwright_sync
except ImportError:  # the test extra is not installed: the browser tests skip, the rest runs
    playwright_sync = None

pytestmark = pytest.mark.slow  # a headless Chromium, an upload and two streamed answers

CHROMIUM = os.environ.get("INGOT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")

# A 5-page PDF about the history of word processors; page 1 says the typewriter was
# "Patented in 1868 by Christopher Latham Sholes".
SHARED_PDF = SHARED_DATA / "docs" / "docling" / "tests" / "data" / "pdf" / "sources" / "multi_page.pdf"
QUESTION = "Who patented the typewriter in 1868?"
FOLLOW_UP = "And when was Google Docs introduced?"  # page 2: "Google Docs (2006)"

INGEST_TIMEOUT_MS = 180_000
ANSWER_TIMEOUT_MS = 240_000


@pytest.fixture(scope="module")
def browser():
    if playwright_sync is None:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    if CHROMIUM is None:
        pytest.skip("Chromium not found (Debian: apt-get install chromium; or set INGOT_CHROMIUM to its path)")
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared multi_page.pdf, else docgen's stand-in (same name, same facts on pages 1 and 2)."""
    if SHARED_PDF.is_file():
        return SHARED_PDF
    return docgen.write_multi_page_pdf(tmp_path_factory.mktemp("ui-docs") / SHARED_PDF.name)


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))  # uncaught JS errors fail the test
    page.goto(server.root + "/")
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_page_and_assets_are_served(server):
    index = httpx.get(server.root + "/", timeout=10)
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in index.headers["content-security-policy"]
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        r = httpx.get(f"{server.root}/ui/{name}", timeout=10)
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind), name
    for bad in ("/ui/../server/app.py", "/ui/%2e%2e/server/app.py", "/ui/missing.js", "/ui/"):
        r = httpx.get(server.root + bad, timeout=10)
        assert r.status_code == 404, bad
    paths = httpx.get(server.root + "/openapi.json", timeout=10).json()["paths"]
    assert "/" not in paths and not any(p.startswith("/ui") for p in paths)


def create_collection(page, name: str) -> None:
    # The form starts open when the server has no collection yet: open it only if closed.
    playwright_sync.expect(page.locator("#collection-select")).to_have_attribute("data-loaded", "true")
    if page.locator("#new-collection").get_attribute("open") is None:
        page.get_by_text("New collection").click()
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create").click()


@pytest.fixture
def collection_name(server):
    """A fresh name; the collection the page creates under it is dropped afterwards."""
    name = f"ui_{uuid.uuid4().hex[:8]}"
    yield name
    httpx.delete(f"{server.base_url}/collections/{name}", timeout=30)


def test_upload_wait_ask_and_see_cited_answer(page, server, collection_name: str, tmp_path: Path, pdf: Path):
    assert pdf.is_file(), f"test document missing: {pdf}"
    expect = playwright_sync.expect
    name = collection_name

    # Create a collection: it becomes the selected one.
    create_collection(page, name)
    expect(page.locator("#collection-select")).to_have_value(name)

    # Creating it again must surface the server's error envelope in the alert.
    create_collection(page, name)
    expect(page.get_by_role("alert")).to_contain_text(name)
    page.get_by_role("button", name="Dismiss error").click()

    # Fewer answer tokens keep the test quick on a laptop CPU; this also exercises Settings.
    page.get_by_role("button", name="Settings").click()
    page.get_by_label("Max answer tokens").fill("96")
    page.get_by_label("Passages (top_k)").fill("4")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#settings")).not_to_be_visible()

    # Upload; the job's row for the file must reach "done" with chunks added.
    page.locator("#file-input").set_input_files(str(pdf))
    row = page.locator(f'li.job-file[data-filename="{pdf.name}"]')
    expect(row).to_have_attribute("data-status", "done", timeout=INGEST_TIMEOUT_MS)
    expect(row).to_have_attribute("data-action", "added")
    expect(row).to_contain_text("5 pages")
    expect(page.locator(f'li.document[data-source="{pdf.name}"]')).to_be_visible()
    expect(page.locator("#collection-info")).to_contain_text("1 document")

    # Ask; wait for the streamed answer to finish.
    page.get_by_label("Your question").fill(QUESTION)
    page.get_by_role("button", name="Send").click()
    answer = page.locator("article.message.assistant").last
    expect(answer).to_have_attribute("data-state", re.compile("^(done|error|stopped)$"), timeout=ANSWER_TIMEOUT_MS)
    shot = tmp_path / "ui.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert answer.get_attribute("data-state") == "done", answer.locator(".message-status").inner_text()
    assert answer.locator(".message-body").inner_text().strip(), "the answer is empty"

    # The answer's sources are the passages its [n] markers cite: each shows the file, a
    # page and a snippet, and each marker in the text links to one of them.
    assert_cited_sources_shown(answer, pdf.name)
    assert_cli_answers_alike(server, name, answer)
    # What the model was given (the stream's first chunk) holds the fact's page; which of
    # those passages a 135M model's answer then cites is the model's business.
    body = {"messages": [{"role": "user", "content": QUESTION}], "collection": name, "max_tokens": 8, "top_k": 4}
    given = given_passages(server.base_url, body)
    assert any("Sholes" in c["snippet"] and c["page_start"] == 1 for c in given), given

    # A follow-up, sent with Enter: the history goes along, and its passages hold page 2.
    first_text = answer.locator(".message-body").inner_text()
    page.get_by_label("Your question").fill(FOLLOW_UP)
    page.get_by_label("Your question").press("Enter")
    second = page.locator("article.message.assistant").nth(1)
    expect(second).to_have_attribute("data-state", re.compile("^(done|error|stopped)$"), timeout=ANSWER_TIMEOUT_MS)
    assert second.get_attribute("data-state") == "done", second.locator(".message-status").inner_text()
    assert_cited_sources_shown(second, pdf.name)
    history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": first_text},
               {"role": "user", "content": FOLLOW_UP}]
    given = given_passages(server.base_url, {**body, "messages": history})
    assert any("Google Docs" in c["snippet"] and c["page_start"] == 2 for c in given), given
    second.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "ui-follow-up.png"), full_page=True)


def assert_cli_answers_alike(server, collection: str, answer) -> None:
    """`ingot ask` against the same server, with the page's settings, answers from the same
    passages through the same path (the page sends no temperature, the CLI neither: both
    are answered greedily). The two texts are not compared word for word: the second
    request reuses the first one's cached prompt, and llama.cpp's logits differ in the last
    bits between a prefill batch and a one-token decode, enough to flip a near-tie."""
    cli = subprocess.run(
        [sys.executable, "-m", "ingot.cli", "ask", QUESTION, "--url", server.base_url, "--collection", collection,
         "--top-k", "4", "--max-tokens", "96", "--json"], capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr
    asked = json.loads(cli.stdout)
    page_body = {"messages": [{"role": "user", "content": QUESTION}], "collections": [collection], "top_k": 4,
                 "mode": "hybrid", "max_tokens": 8}  # app.js ragRequest() with this test's settings
    given = given_passages(server.base_url, page_body)
    assert asked["retrieval"]["query"] == QUESTION
    assert asked["retrieval"]["passages_used"] == len(given) == 4
    given_ids = {c["chunk_id"] for c in given}
    assert {c["chunk_id"] for c in asked["citations"]} <= given_ids, "the CLI cited a passage the page was not given"
    given_places = {(str(c["index"]), c["source"], _page_label(c)) for c in given}
    citations = answer.locator("li.citation")
    shown = {(citations.nth(i).get_attribute("data-index"), citations.nth(i).get_attribute("data-source"),
              citations.nth(i).get_attribute("data-page")) for i in range(citations.count())}
    assert shown <= given_places, "the page shows a source the CLI's request was not given"
    for text in (asked["choices"][0]["message"]["content"], answer.locator(".message-body").inner_text()):
        assert _words(text) and not _words(text).startswith("The documents do not say"), text


def _words(text: str) -> str:
    """The answer's words, whitespace folded (the page reflows it)."""
    return " ".join(text.split())


def _page_label(citation: dict) -> str:
    """app.js's pageLabel(): "p. 3", "pp. 3–5", or "" for formats without pages."""
    start, end = citation["page_start"], citation["page_end"]
    if start is None:
        return ""
    return f"p. {start}" if end in (None, start) else f"pp. {start}–{end}"


def assert_cited_sources_shown(answer, source: str) -> None:
    """Every shown source names the file and a page; every marker link has its source."""
    expect = playwright_sync.expect
    citations = answer.locator("li.citation")
    for i in range(citations.count()):
        expect(citations.nth(i)).to_have_attribute("data-source", source)
        expect(citations.nth(i).locator(".cite-page")).to_have_text(re.compile(r"^(p\. \d+|pp\. \d+–\d+)$"))
    for href in answer.locator(".message-body a").evaluate_all("links => links.map(a => a.getAttribute('href'))"):
        assert answer.locator(href).count() == 1, f"marker {href} has no source in the list"


def test_answer_text_is_escaped_and_markers_link_to_citations(page):
    """Model output is untrusted: HTML in it stays text; [n] of a known citation becomes a link."""
    result = page.evaluate("""() => {
        const box = document.createElement('div');
        const list = document.createElement('ol');
        const citations = [{index: 1, source: '<b>x</b>.pdf', page_start: 2, page_end: 3,
                            snippet: '<img src=x onerror=alert(1)>'}];
        window.ingotUI.renderAnswer(box, 'See [1] and [7] <img src=x onerror="window.pwned=1">', citations, 99);
        window.ingotUI.renderCitations(list, citations, 99);
        return {
            text: box.textContent,
            links: [...box.querySelectorAll('a')].map(a => [a.textContent, a.getAttribute('href')]),
            imgs: box.querySelectorAll('img').length + list.querySelectorAll('img, b').length,
            source: list.querySelector('.cite-source').textContent, page: list.querySelector('.cite-page').textContent,
            places: [
                {page_start: 1, page_end: 1, location: 'page 1'}, {page_start: 3, page_end: 3, location: 'slide 3'},
                {page_start: 2, page_end: 2, location: 'Sheet2'}, {page_start: null, page_end: null, location: null},
                {page_start: 4, page_end: 5, location: 'page 4 – page 5'},
            ].map(window.ingotUI.placeLabel),
        };
    }""")
    assert result["links"] == [["1", "#cite-99-1"]]
    assert result["text"] == 'See [1] and [7] <img src=x onerror="window.pwned=1">'
    assert result["imgs"] == 0
    assert result["source"] == "<b>x</b>.pdf"
    assert result["page"] == "pp. 2–3"
    assert result["places"] == ["p. 1", "slide 3", "p. 2 · Sheet2", "", "pp. 4–5"]


def test_page_with_api_keys_asks_for_a_key_and_sends_it(browser, data_dir: Path, tmp_path_factory):
    """With keys on, the page itself stays open; API calls fail with 401 until the key is
    entered in Settings, then carry it as a Bearer token."""
    from authutil import create_key, isolated_data_dir
    from serverutil import RunningServer

    state = isolated_data_dir(data_dir, tmp_path_factory.mktemp("ui-auth"))
    key = create_key(state, "ui", "--admin")["key"]
    srv = RunningServer(state, env={"INGOT_MODEL": "none", "INGOT_RANKING_MODEL": "none"})
    context = browser.new_context()
    try:
        for path in ("/", "/ui/app.js", "/ui/style.css"):
            assert httpx.get(srv.root + path, timeout=10).status_code == 200, path
        page = context.new_page()
        page.goto(srv.root + "/")
        expect = playwright_sync.expect
        expect(page.get_by_role("alert")).to_contain_text("API key")
        expect(page.locator("#settings")).to_be_visible()  # opened for the user
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Save").click()
        page.get_by_role("button", name="Dismiss error").click()
        create_collection(page, "keyed")
        expect(page.locator("#collection-select")).to_have_value("keyed")
        expect(page.get_by_role("alert")).to_be_hidden()
        stored = page.evaluate("() => JSON.parse(localStorage.getItem('ingot.settings')).apiKey")
        assert stored == key
        listed = httpx.get(f"{srv.base_url}/collections", headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert [c["name"] for c in listed.json()["data"]] == ["keyed"]
    finally:
        context.close()
        srv.stop()


def test_jobs_panel_shows_only_the_keys_own_jobs(browser, data_dir: Path, tmp_path_factory):
    """Two tenants in one collection: the page with A's key lists A's ingestion job and
    none of B's (filename, document id, counts are B's business)."""
    import json

    from authutil import create_key, isolated_data_dir
    from kbutil import upload
    from serverutil import RunningServer

    state = isolated_data_dir(data_dir, tmp_path_factory.mktemp("ui-tenants"))
    keys = {name: create_key(state, name, *flags)["key"]
            for name, flags in (("ops", ("--admin",)), ("alice", ("--groups", "a")), ("bob", ("--groups", "b")))}
    auth = {name: {"Authorization": f"Bearer {key}"} for name, key in keys.items()}
    srv = RunningServer(state, env={"INGOT_MODEL": "none", "INGOT_RANKING_MODEL": "none"})
    context = browser.new_context()
    errors: list[str] = []
    try:
        assert httpx.post(f"{srv.base_url}/collections", json={"name": "panel"}, headers=auth["ops"],
                          timeout=30).status_code == 201
        upload(srv.base_url, "panel", [("b_secret_plan.txt", b"Bob's secret plan.")], acl="b", headers=auth["bob"])
        upload(srv.base_url, "panel", [("a_notes.txt", b"Alice's notes.")], acl="a", headers=auth["alice"])
        settings = json.dumps({"apiKey": keys["alice"]})
        context.add_init_script(f"localStorage.setItem('ingot.settings', {json.dumps(settings)})")
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(srv.root + "/")
        expect = playwright_sync.expect
        expect(page.locator("#collection-select")).to_have_value("panel")
        # A's own job is listed (so the listing has arrived), B's is not.
        expect(page.locator('li.job-file[data-filename="a_notes.txt"]')).to_be_visible(timeout=30_000)
        expect(page.locator("#jobs [data-job-id]")).to_have_count(1)
        expect(page.locator('li.job-file[data-filename="b_secret_plan.txt"]')).to_have_count(0)
        assert "b_secret" not in page.locator("#jobs").inner_text()
    finally:
        context.close()
        srv.stop()
    assert not errors, f"JavaScript errors on the page: {errors}"
