"""The pages of a rendered run, read as a reader would: summary first, numbers formatted, nothing said twice,
no literal escape sequences, no path of the machine that made them, and a browser that finds nothing wrong.

Every test reads the one run that the session fixture ``rendered_run`` renders (see conftest.py).
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browsers import CHROMIUM, SKIP_REASON, launch_chromium

from digitrec_utils import config
from digitrec_utils.reporting.tables import HEADERS

PAGES = ("index", "01_eda", "02_classical_baselines", "03_dense_nets", "04_cnn", "05_deployment",
         "06_model_comparison", "08_adaptation")
MODEL_PAGES = ("02_classical_baselines", "03_dense_nets", "04_cnn")
DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+")
# Folders that only a machine's own paths start with.
MACHINE_FOLDERS = re.compile(r"(?<![\w.~<>-])/(?:home|root|tmp|usr|work|opt|var|srv|mnt|private|Users)/")
LONG_DECIMAL = re.compile(r"^-?[\d,]*\.\d{5,}$")


class _PageText(HTMLParser):
    """Collects a page's visible text in three parts: prose, table cells and preformatted blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.prose: list[str] = []
        self.cells: list[str] = []
        self.preformatted: list[str] = []
        self.headings: list[str] = []
        self._stack: list[str] = []
        self._cell: list[str] | None = None
        self._heading: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "img", "meta", "link", "input", "hr"):
            return
        self._stack.append(tag)
        if tag in ("td", "th"):
            self._cell = []
        if tag in ("h1", "h2", "h3"):
            self._heading = []

    def handle_endtag(self, tag):
        if tag not in self._stack:
            return
        while self._stack and self._stack.pop() != tag:
            pass
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append(" ".join("".join(self._cell).split()))
            self._cell = None
        if tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append("".join(self._heading).replace("¶", "").strip())
            self._heading = None

    def handle_data(self, data):
        if any(tag in ("script", "style") for tag in self._stack):
            return
        if self._heading is not None:
            self._heading.append(data)
        if self._cell is not None:
            self._cell.append(data)
        elif any(tag in ("pre", "code") for tag in self._stack):
            self.preformatted.append(data)
        else:
            self.prose.append(data)


def _read(run: Path, page: str) -> tuple[str, _PageText]:
    html = (run / f"{page}.html").read_text(encoding="utf-8")
    parser = _PageText()
    parser.feed(html)
    return html, parser


def _sentences(text: str) -> list[str]:
    """Split prose into sentences of some length (short ones, like 'yes', repeat for good reasons)."""
    flat = " ".join(text.split())
    return [sentence for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", flat) if len(sentence) > 40]


@pytest.mark.parametrize("page", PAGES)
def test_no_literal_escape_sequences(rendered_run, page):
    _, text = _read(rendered_run, page)
    visible = "".join(text.prose + text.cells + text.headings)
    assert "\\n" not in visible and "\\t" not in visible, [heading for heading in text.headings if "\\" in heading]


@pytest.mark.parametrize("page", PAGES)
def test_nothing_is_said_twice(rendered_run, page):
    _, text = _read(rendered_run, page)
    sentences = _sentences(" ".join(text.prose))
    repeated = sorted({sentence for sentence in sentences if sentences.count(sentence) > 1})
    assert repeated == [], f"{page} says these more than once: {repeated}"
    prose = " ".join(" ".join(text.prose).split())
    cells = [" ".join(cell.split()) for cell in text.cells if len(cell) > 40]
    in_tables = sorted({sentence for sentence in sentences for cell in cells if sentence in cell}
                       | {cell for cell in cells if cell in prose})
    assert in_tables == [], f"{page} says in its prose what a table already says: {in_tables[:3]}"


@pytest.mark.parametrize("page", PAGES)
def test_no_path_of_the_machine_that_made_it(rendered_run, page):
    html, _ = _read(rendered_run, page)
    without_images = DATA_URI.sub("", html)
    for folder in {str(rendered_run), str(rendered_run.resolve()), str(config.PROJECT_ROOT), str(Path.home()),
                   tempfile.gettempdir(), sys.prefix, sys.base_prefix}:
        assert folder not in without_images, f"{page} shows {folder}"
    found = [without_images[max(0, match.start() - 60):match.end() + 40]
             for match in MACHINE_FOLDERS.finditer(without_images)]
    assert found == [], f"{page} shows machine paths: {found[:3]}"
    assert "PosixPath(" not in without_images, f"{page} shows a Python path object's repr"


@pytest.mark.parametrize("page", PAGES)
def test_table_numbers_are_formatted_for_reading(rendered_run, page):
    _, text = _read(rendered_run, page)
    raw = [cell for cell in text.cells if LONG_DECIMAL.match(cell)]
    assert raw == [], f"{page} has unformatted numbers such as {raw[:5]}"
    html, _ = _read(rendered_run, page)
    for table in re.findall(r"<table.*?</table>", html, re.DOTALL):
        headers = [re.sub(r"<[^>]+>", "", header).strip() for header in re.findall(r"<th[^>]*>(.*?)</th>", table,
                                                                                   re.DOTALL)]
        assert not {"label", "name"} <= set(headers) or "T-shirt" in table, f"{page}: a label column and a name " \
                                                                          "column that repeats it"
        assert not set(HEADERS) & set(headers), f"{page}: result columns headed by their names in code: {headers}"
    printed = re.findall(r"^\s*(\d) \1\s+[\d,]+\s+[\d,]+\s*$", "".join(text.preformatted), re.MULTILINE)
    assert printed == [], f"{page} prints a digit's label and its name side by side"


@pytest.mark.parametrize("page", MODEL_PAGES)
def test_model_pages_open_with_their_summary(rendered_run, page):
    html, text = _read(rendered_run, page)
    assert text.headings[1] == "Summary", text.headings[:3]
    summary = html[html.index('id="Summary"'):html.index('class="digitrec-toc"')]
    assert re.search(r"scored \d\.\d{4} \(95% CI \d\.\d{4}-\d\.\d{4}\)", summary)
    assert "weakest class" in summary


def test_comparison_and_index_lead_with_the_recommendation(rendered_run):
    html, text = _read(rendered_run, "06_model_comparison")
    assert text.headings[1] == "Summary: the model card"
    card = html[html.index('id="Summary:-the-model-card"'):html.index('class="digitrec-toc"')]
    assert "Expected accuracy on unseen images" in card and "Where it fails" in card
    index, index_text = _read(rendered_run, "index")
    assert index_text.headings[1:3] == ["Recommended model", "Reports"]
    headline = index[index.index("Recommended model"):index.index(">Reports<")]
    assert re.search(r"test accuracy\s*<strong>\d\.\d{4}</strong>, 95% interval \d\.\d{4}\s+to \d\.\d{4}", headline)
    assert headline.count("</tr>") >= 2  # The runner-ups, each with its interval.
    assert re.search(r"Chosen on validation accuracy \(\d\.\d{4}\),\s+then evaluated once", headline)
    # When it started and how long it took read as a person writes them, not as ISO 8601 and raw seconds.
    subtitle = index[index.index('class="subtitle"'):index.index("</p>", index.index('class="subtitle"'))]
    assert re.search(r"started \d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC · (\d+\.\d s|\d+ min \d+ s) in all",
                     subtitle), subtitle
    reports = index[index.index(">Reports<"):index.index("Run manifest")]
    times = re.findall(r'<td class="number">([^<]*)</td>', reports)
    assert times and all(re.fullmatch(r"\d+\.\d s|\d+ min \d+ s", time) for time in times), times


def test_deployment_leads_with_what_the_office_needs_and_the_card_repeats_it(rendered_run):
    html, text = _read(rendered_run, "05_deployment")
    assert text.headings[1] == "Summary", text.headings[:3]
    summary = html[html.index('id="Summary"'):html.index('class="digitrec-toc"')]
    assert re.search(r"on average over the corrupted copies at severity 2", summary)
    assert re.search(r"answer <strong>\d+\.\d%</strong> of digits automatically \(95% CI [\d.]+%-[\d.]+%\)", summary) \
        or "answers every digit" in summary
    assert summary.count("data:image/png;base64,") == 0  # Figures follow in their sections.
    assert html.count("data:image/png;base64,") >= 6  # Curve, robustness, three worst, score histograms.
    folded = re.findall(r"<details class=\"digitrec-details\">(.*?)</details>", html, re.DOTALL)
    assert any("[16/16] elastic: accuracy" in block for block in folded)  # The per-corruption log is folded.
    assert "Fashion-MNIST" in html or "only generated shapes are used" in html
    card_html, _ = _read(rendered_run, "06_model_comparison")
    card = card_html[card_html.index('id="Summary:-the-model-card"'):card_html.index('class="digitrec-toc"')]
    assert "On real mail" in card and "When to hand a digit to a person" in card
    json_beside_model = (rendered_run / config.SAVED_MODEL_NAME).with_suffix(".json").read_text()
    assert '"abstention"' in json_beside_model and '"chosen_on": "validation"' in json_beside_model


def test_epoch_logs_and_other_models_are_folded_away(rendered_run):
    html, _ = _read(rendered_run, "04_cnn")
    folded = re.findall(r"<details class=\"digitrec-details\">(.*?)</details>", html, re.DOTALL)
    assert any("Training log" in block and "epoch 1/1" in block for block in folded)
    outside = re.sub(r"<details class=\"digitrec-details\">.*?</details>", "", html, flags=re.DOTALL)
    assert "epoch 1/1" not in outside  # No epoch line outside a folded section.
    classical, _ = _read(rendered_run, "02_classical_baselines")
    other_models = next(block for block in re.findall(r"<details class=\"digitrec-details\">(.*?)</details>",
                                                       classical, re.DOTALL) if "The other models on test" in block)
    assert other_models.count("data:image/png;base64,") >= 4  # Their confusion matrices and galleries.


def test_pages_say_which_precision_trained_and_the_saved_model_is_float32(rendered_run):
    import keras

    from digitrec_utils.models.precision import computes_below_float32

    dense, _ = _read(rendered_run, "03_dense_nets")
    assert "Networks train in float32. Why: the precision parameter asks for it." in dense
    cnn_page, _ = _read(rendered_run, "04_cnn")
    assert "Networks train in float32. Why: the precision parameter asks for it." in cnn_page
    record = json.loads((rendered_run / "results" / "04_cnn.json").read_text())
    assert record["training_precision"]["policy"] == "float32"
    description = json.loads((rendered_run / config.SAVED_MODEL_NAME).with_suffix(".json").read_text())
    assert description["trained_in"] == "float32" and description["computes_in"] == "float32"
    assert not computes_below_float32(keras.models.load_model(rendered_run / config.SAVED_MODEL_NAME))


@pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)
def test_every_page_opens_in_chromium_without_errors_or_requests(rendered_run):
    playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is part of the dev extra")
    with playwright.sync_playwright() as driver:
        browser = launch_chromium(driver)
        try:
            for page_name in PAGES:
                _check_page_with_javascript(browser, rendered_run / f"{page_name}.html")
                _check_page_without_javascript(browser, rendered_run / f"{page_name}.html")
            _check_the_checks_see_a_request(browser, rendered_run)
        finally:
            browser.close()


def _check_page_with_javascript(browser, path: Path) -> None:
    page = browser.new_page()
    errors, failed, requested = [], [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on("request", lambda request: requested.append(request.url))
    page.goto(path.as_uri(), wait_until="load")
    assert errors == [], f"{path.name}: console errors {errors}"
    assert failed == [], f"{path.name}: failed requests {failed}"
    leaving = [url for url in requested if not url.startswith(("file:", "data:", "about:"))]
    assert leaving == [], f"{path.name} asked for {leaving}"
    details = page.locator("details")
    for position in range(details.count()):
        section = details.nth(position)
        assert section.evaluate("element => element.open") is False
        section.locator("summary").first.click()
        assert section.evaluate("element => element.open") is True, f"{path.name}: a section does not open"
    page.close()


def _check_page_without_javascript(browser, path: Path) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(path.as_uri(), wait_until="load")
    heading = page.locator("h1").first
    assert heading.is_visible() and heading.inner_text().strip(), f"{path.name}: no visible title without JavaScript"
    assert page.locator("table").first.is_visible(), f"{path.name}: no visible table without JavaScript"
    if path.stem != "index":
        assert "Contents" in page.locator("nav.digitrec-toc").inner_text()
    context.close()


def _check_the_checks_see_a_request(browser, run: Path) -> None:
    """A control page that fetches from another host: the request must be seen, or the checks above are blind."""
    with tempfile.TemporaryDirectory() as scratch:
        control = Path(scratch) / "control.html"
        control.write_text('<html><body><h1>x</h1><img src="https://example.invalid/x.png"></body></html>')
        page = browser.new_page()
        requested = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(control.as_uri(), wait_until="load")
        page.close()
    assert requested[-1] == "https://example.invalid/x.png"
