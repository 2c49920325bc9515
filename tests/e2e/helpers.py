"""Small real images and page checks shared by the e2e tests."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw


def png(width: int = 320, height: int = 240, seed: int = 0) -> bytes:
    """A PNG with a few coloured shapes (something to see in the screenshots)."""
    im = Image.new("RGB", (width, height), (30 + seed * 40 % 200, 60, 90))
    d = ImageDraw.Draw(im)
    d.rectangle([width * 0.1, height * 0.2, width * 0.45, height * 0.6], fill=(220, 200, 40))
    d.ellipse([width * 0.55, height * 0.3, width * 0.9, height * 0.85], fill=(200, 60, 60))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def write_pngs(folder: Path, n: int, **kw) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"frame_{i:03d}.png"
        p.write_bytes(png(seed=i, **kw))
        paths.append(p)
    return paths


def zip_of_pngs(n: int, size: int = 16) -> bytes:
    buf = io.BytesIO()
    tiny = png(size, size)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for i in range(n):
            z.writestr(f"img_{i:05d}.png", tiny)
    return buf.getvalue()


UNLABELLED_JS = """() => {
  const bad = [];
  for (const el of document.querySelectorAll('input, select, textarea')) {
    const named = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
    if (!named) bad.push(el.outerHTML.slice(0, 120));
  }
  for (const el of document.querySelectorAll('button, a[href]')) {
    const name = (el.getAttribute('aria-label') || el.textContent || '').trim();
    if (!name) bad.push(el.outerHTML.slice(0, 120));
    if (el.tabIndex < 0) bad.push('not focusable: ' + el.outerHTML.slice(0, 120));
  }
  return bad;
}"""


def assert_accessible(page) -> None:
    """Every form control has a label and every button / link has a name and is in the tab order."""
    bad = page.evaluate(UNLABELLED_JS)
    assert not bad, f"controls without an accessible name or focus: {bad}"


def tab_to(page, target, max_presses: int) -> None:
    """Press Tab until `target` (a locator) has the focus, at most `max_presses` times."""
    for _ in range(max_presses):
        if target.evaluate("el => el === document.activeElement"):
            break
        page.keyboard.press("Tab")
