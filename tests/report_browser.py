"""The Snakemake report as a reader sees it: rendered in headless Chromium (Debian's chromium and
chromium-driver; .ci/run installs them), driven by selenium. Checks that what must be seen is
drawn, not only present in the HTML: an element counts as seen when, scrolled into view, it has a
size, is not hidden by its style, and is the topmost element at its own centre (so neither clipped
by a scrolling container nor covered); an image also has to be decoded (naturalWidth > 0)."""

from __future__ import annotations

import base64
import contextlib
import os
import pathlib
import shutil

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def browser_problem() -> str | None:
    """Why the browser test cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -c requirements.lock selenium)"
    missing = [name for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not path]
    if missing:
        return f"{' and '.join(missing)} not found (apt-get install chromium chromium-driver; .ci/run does it)"
    return None


@contextlib.contextmanager
def browser(width: int = 1600, height: int = 1000):
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--allow-file-access-from-files", f"--window-size={width},{height}"):
        options.add_argument(arg)
    # The Debian driver, not Selenium Manager (which would try to download one).
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


SEEN = """
const el = arguments[0];
el.scrollIntoView({block: 'center', inline: 'nearest'});
let r = el.getBoundingClientRect();
if (r.height > innerHeight) { el.scrollIntoView({block: 'start', inline: 'nearest'}); r = el.getBoundingClientRect(); }
if (r.width < 1 || r.height < 1) return 'has no size';
for (let e = el; e; e = e.parentElement) {
  const s = getComputedStyle(e);
  if (s.display === 'none' || s.visibility === 'hidden' || parseFloat(s.opacity) === 0) return 'hidden by its style';
}
const x = r.left + Math.min(r.width / 2, 40), y = r.top + Math.min(r.height / 2, 20);
if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) return 'outside the window after scrolling to it';
const top = document.elementFromPoint(x, y);
if (!top || !(top === el || el.contains(top))) return 'covered or clipped (topmost there: ' + (top ? top.tagName : 'nothing') + ')';
if (el.tagName === 'IMG' && !(el.complete && el.naturalWidth > 0)) return 'an image that did not decode';
return '';
"""


def seen(driver, element) -> str:
    """'' when `element` is drawn where a reader can see it, else why not."""
    return driver.execute_script(SEEN, element)


def wait_for(driver, css: str, timeout: float = 30.0):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def click_text(driver, text: str, tag: str = "*"):
    """Click the innermost element whose text is exactly `text` (a menu entry, a table cell)."""
    from selenium.webdriver.common.by import By

    matches = driver.find_elements(By.XPATH, f"//{tag}[normalize-space(text())='{text}']")
    if not matches:
        raise AssertionError(f"nothing reads {text!r}")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", matches[0])
    return matches[0]


def full_page_screenshot(driver, path) -> None:
    """The whole scrolled content (the report scrolls inside its content pane) as one PNG."""
    height = driver.execute_script(
        "return Math.max(...[...document.querySelectorAll('*')].map(e => e.scrollHeight), innerHeight)")
    width = driver.execute_script("return innerWidth")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": min(int(height), 16000), "deviceScaleFactor": 1, "mobile": False})
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    pathlib.Path(path).write_bytes(base64.b64decode(shot["data"]))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def check_report(path, figures: list[str], claims: int, screenshot_dir=None) -> list[str]:
    """What a reader of the report at `path` would miss: [] when the landing page shows the verdict
    per theorem and the claims table (`claims` rows), then every figure of `figures` (file stems,
    in the expected order) as a decoded image with its caption, and the menu lists the figures in
    that order, shows one inline, and shows the provenance as text."""
    from selenium.webdriver.common.by import By

    problems = []
    with browser() as driver:
        driver.get(pathlib.Path(path).resolve().as_uri())
        wait_for(driver, ".ntkvae-claims")
        if screenshot_dir:
            driver.save_screenshot(os.path.join(screenshot_dir, "report_landing.png"))
        # No rst errors (a caption's `|x|` read as a substitution, say): docutils prints them in the page.
        for message in driver.find_elements(By.CSS_SELECTOR, ".system-message"):
            problems.append(f"rst error in the report: {message.text[:200]!r}")
        # The verdict per theorem and the claims table, at the top of the landing page.
        summary = driver.find_elements(By.CSS_SELECTOR, ".ntkvae-claims ul li")
        if not summary:
            problems.append("no verdict per theorem")
        for item in summary[:1]:
            if why := seen(driver, item):
                problems.append(f"verdict per theorem: {why}")
        rows = driver.find_elements(By.CSS_SELECTOR, ".ntkvae-claims table.claims tbody tr")
        if len(rows) != claims:
            problems.append(f"claims table: {len(rows)} rows, expected {claims}")
        header = [th.text.strip().lower() for th in driver.find_elements(By.CSS_SELECTOR, ".ntkvae-claims table.claims th")]
        for column in ("verdict", "measured [interval]", "predicted", "tolerance", "regime", "figure"):
            if column not in header:
                problems.append(f"claims table: no column {column!r} (has {header})")
        for row in rows[:1] + rows[-1:]:
            if why := seen(driver, row.find_element(By.CSS_SELECTOR, "td")):
                problems.append(f"claims table row {row.get_attribute('id')}: {why}")
        # Every figure inline with its caption, in order.
        sections = [s.get_attribute("id") for s in driver.find_elements(By.CSS_SELECTOR, "section.ntkvae-figure")]
        if sections != figures:
            problems.append(f"figures on the landing page: {sections}, expected {figures}")
        for stem in figures:
            images = driver.find_elements(By.CSS_SELECTOR, f"section[id='{stem}'] img")
            captions = driver.find_elements(By.CSS_SELECTOR, f"section[id='{stem}'] .ntkvae-caption")
            if not images or not captions:
                problems.append(f"{stem}: {'no image' if not images else 'no caption'}")
                continue
            if why := seen(driver, images[0]):
                problems.append(f"{stem} image: {why}")
            elif images[0].size["width"] < 0.95 * min(driver.execute_script("return arguments[0].naturalWidth", images[0]), 300):
                problems.append(f"{stem} image: drawn {images[0].size['width']} px wide")   # shrunk below legibility
            if why := seen(driver, captions[0]):
                problems.append(f"{stem} caption: {why}")
            elif len(captions[0].text) < 40:
                problems.append(f"{stem} caption: {captions[0].text!r}")
        if screenshot_dir:
            full_page_screenshot(driver, os.path.join(screenshot_dir, "report_full.png"))
        # A claim's figure link opens that figure's entry (its labels, the view button, the caption).
        links = driver.find_elements(By.CSS_SELECTOR, ".ntkvae-claims table.claims tbody a")
        if rows and not links:
            problems.append("claims table: no links to the figures")
        if links:
            target = links[0].text.strip()
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", links[0])
            entry = driver.find_elements(By.XPATH, "//td[.//span[normalize-space(text())='image']]//a")
            if not entry:
                problems.append(f"claims table: the link to {target} does not open its entry")
        # The PDF a click away: the link under the first figure opens its PDF entry, which shows it.
        if figures:
            links = driver.find_elements(By.CSS_SELECTOR, f"section[id='{figures[0]}'] a")
            pdf = [a for a in links if a.text.strip() == f"{figures[0]}.pdf"]
            if not pdf:
                problems.append(f"{figures[0]}: no link to its PDF")
            else:
                driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", pdf[0])
                view = driver.find_elements(By.XPATH, "//td[.//span[normalize-space(text())='pdf']]//a")
                if not view:
                    problems.append(f"{figures[0]}.pdf: its link does not open the PDF's entry")
                else:
                    view[0].click()
                    frames = [f.get_attribute("src") or "" for f in driver.find_elements(By.TAG_NAME, "iframe")]
                    if not any(src.startswith("data:application/pdf") for src in frames):
                        problems.append(f"{figures[0]}.pdf: not shown after a click (frames: {[f[:40] for f in frames]})")

        # The menu: Figures lists F01 ... in paper order; a click shows the image.
        driver.get(pathlib.Path(path).resolve().as_uri())
        wait_for(driver, ".ntkvae-claims")
        click_text(driver, "Figures")
        datasets = sorted({stem.rsplit("_", 1)[1] for stem in figures})
        if len(datasets) > 1:
            click_text(driver, datasets[0])
        cells = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "nav td, #navbar td, td")
                 if td.text.startswith("F") and td.text[1:3].isdigit()]
        expected = [f"F{int(stem.split('_')[0][1:]):02d}" for stem in figures if stem.endswith(f"_{datasets[0]}")]
        if [c[:3] for c in cells] != expected:
            problems.append(f"menu lists the figures as {cells}, expected {expected}")
        if cells:
            row = driver.find_element(By.XPATH, f"//td[normalize-space(text())='{cells[0]}']/parent::tr")
            row.find_element(By.CSS_SELECTOR, "a").click()
            shown = driver.find_elements(By.CSS_SELECTOR, "img[src^='data:image/png']")
            shown = [img for img in shown if not img.find_elements(By.XPATH, "ancestor::section")]
            if not shown or (why := seen(driver, shown[-1])):
                problems.append(f"menu: the first figure is not shown ({why if shown else 'no image'})")
            if screenshot_dir:
                driver.save_screenshot(os.path.join(screenshot_dir, "report_menu_figure.png"))
        # Provenance as readable text (back to the menu through the breadcrumbs' first entry, home).
        driver.find_element(By.CSS_SELECTOR, "nav ol a").click()
        click_text(driver, "Provenance")
        row = driver.find_element(By.XPATH, "//td[normalize-space(text())='config, commit, versions, devices']/parent::tr")
        row.find_element(By.CSS_SELECTOR, "a").click()
        frame = wait_for(driver, "iframe")
        driver.switch_to.frame(frame)
        text = driver.find_element(By.TAG_NAME, "body").text
        driver.switch_to.default_content()
        if "git commit" not in text or "devices the training jobs ran on" not in text or '{"' in text:
            problems.append(f"provenance not readable: {text[:300]!r}")
        if screenshot_dir:
            driver.save_screenshot(os.path.join(screenshot_dir, "report_provenance.png"))
    return problems
