"""OCR of page images with the tesseract binary (through pytesseract).

Tesseract reports every word with its block, paragraph and line number; the words are
regrouped into paragraphs so that a scanned page yields the same paragraph-sized
elements as a page with a text layer.

Two things make plain ``tesseract`` lose text on real scans, and both are handled here:

* **Ruled tables.** Table borders confuse tesseract's layout analysis: whole rows go
  missing and digits next to a border are misread. Long thin horizontal and vertical
  rules are found (runs of dark pixels much longer than any letter), erased before OCR,
  and the table they enclose is cut into its ruled bands, which are stacked apart and
  read as one uniform block (``--psm 6``): every row and every lone digit comes through.
  The words are then put back into rows and columns and laid out as a Markdown table.
* **Rotated scans.** When the first pass reads badly, tesseract's orientation detection
  (``--psm 0``) says how far the page is turned, and the page is read again upright.

The language is the caller's, or with "auto" the one the page's script calls for
(tesseract's script detection, or a hint from the document's text layer): Latin -> eng,
Han -> chi_sim, Arabic -> ara; deu and fra from a text layer's letters.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import statistics
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ingot.ingest.elements import ExtractionError, markdown_table, split_table

TEXT_CONFIG = "--oem 1 --psm 3"  # automatic layout: columns kept apart, digits kept
CELLS_CONFIG = "--oem 1 --psm 6"  # one uniform block: the stacked rows of a table
MIN_WORD_CONFIDENCE = 0  # tesseract marks non-words with -1; real words keep even a low score
MIN_BLOCK_CONFIDENCE = 35  # a paragraph scoring below this on average is noise (a photo, a logo)
RETRY_CONFIDENCE = 60  # a page read worse than this may be rotated
MIN_SIDE_PX = 1000  # smaller images are upscaled first: tesseract wants letters 10+ px high
DARK = 200  # gray level below which a pixel may belong to a ruling line
MAX_TABLES = 20
MAX_RULES = 600

Box = tuple[float, float, float, float]


@dataclass
class OcrBlock:
    """A paragraph (kind "text") or a ruled table (kind "table", Markdown) found by OCR,
    with its box in the pixel coordinates of the image given."""

    kind: str
    text: str
    bbox: Box
    confidence: float
    rows: list[list[str]] | None = None  # a table's cells, header row first

    def parts(self, rows_per_element: int) -> list[tuple[str, dict[str, int]]]:
        """(text, part meta) as elements take them: a long table split into Markdown
        tables of at most ``rows_per_element`` rows, each under the header row."""
        if not self.rows:
            return [(self.text, {})]
        return [(part.text, part.meta()) for part in split_table(self.rows, rows_per_element)]


@dataclass
class _Word:
    text: str
    x0: int
    y0: int
    x1: int
    y1: int
    conf: float

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2


# --------------------------------------------------------------------------------------
# Tesseract
# --------------------------------------------------------------------------------------


def _tesseract():
    """Import pytesseract and make sure the binary runs; the error says how to fix it."""
    try:
        import pytesseract
    except ImportError as exc:  # pragma: no cover - pytesseract is a hard dependency
        raise ExtractionError("failed", "OCR needs the pytesseract package (pip install pytesseract)") from exc
    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        raise _missing_binary()
    return pytesseract


def _missing_binary() -> ExtractionError:
    return ExtractionError("failed", "OCR needs the tesseract program, which was not found; install it "
                                     "(Debian/Ubuntu: apt-get install tesseract-ocr) or turn OCR off")


@functools.lru_cache(maxsize=None)
def _installed_languages() -> frozenset[str]:
    try:
        return frozenset(_tesseract().get_languages(config=""))
    except Exception:  # noqa: BLE001 - an old tesseract without --list-langs: let it try
        return frozenset()


def _check_languages(languages: str) -> None:
    """Tesseract quietly skips a language it has no data for when given several
    ("eng+deu"); say so instead of returning worse text."""
    installed = _installed_languages()
    missing = [lang for lang in languages.split("+") if lang and installed and lang not in installed]
    if missing:
        raise ExtractionError("failed", f"tesseract has no language data for {'+'.join(missing)} "
                                        f"(installed: {', '.join(sorted(installed))}); install it, e.g. "
                                        f"apt-get install tesseract-ocr-{missing[0]}")


# Tesseract's OSD script names -> the language pack that reads them. Latin-script text
# is read as English: OSD cannot tell English from German or French (a document's text
# layer can, see pdf_scripts.ocr_language_of).
SCRIPT_LANGUAGES = {"Latin": "eng", "Han": "chi_sim", "HanS": "chi_sim", "HanT": "chi_sim", "Arabic": "ara"}
AUTO = "auto"
MIN_SCRIPT_CONFIDENCE = 1.0


def detect_script(image: Image.Image) -> str | None:
    """The script tesseract's orientation and script detection (``--psm 0``) sees on the
    image ("Latin", "Han", "Arabic", ...), or None when it cannot tell (too little text,
    no osd data installed)."""
    pytesseract = _tesseract()
    try:
        osd = pytesseract.image_to_osd(image, config="--psm 0", timeout=30)
    except (pytesseract.TesseractError, RuntimeError):
        return None
    script = re.search(r"Script:\s*(\w+)", osd)
    confidence = re.search(r"Script confidence:\s*([\d.]+)", osd)
    if not script or not confidence or float(confidence.group(1)) < MIN_SCRIPT_CONFIDENCE:
        return None
    return script.group(1)


def supported_languages() -> list[str]:
    """The OCR languages automatic choice can pick: those of SCRIPT_LANGUAGES (plus deu
    and fra, chosen from a text layer) that are installed."""
    wanted = {*SCRIPT_LANGUAGES.values(), "deu", "fra"}
    installed = _installed_languages()
    return sorted(lang for lang in wanted if not installed or lang in installed)


def resolve_languages(requested: str, image: Image.Image | None = None, hint: str | None = None) -> str:
    """The tesseract language string to read with. Explicit languages ("eng+deu") are
    used as given. ``auto``: the language the document's text layer suggests (``hint``),
    else the one for the script OSD sees on ``image``, else English; only installed
    packs are chosen."""
    if requested and requested != AUTO:
        return requested
    installed = _installed_languages()
    for candidate in (hint, SCRIPT_LANGUAGES.get(detect_script(image) or "") if image is not None else None):
        if candidate and (not installed or candidate in installed):
            return candidate
    return "eng"


def _run(image: Image.Image, languages: str, config: str, timeout_s: float) -> dict[str, list]:
    pytesseract = _tesseract()
    _check_languages(languages or "eng")
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # tesseract's own threads only slow a shared machine down
    try:
        return pytesseract.image_to_data(image, lang=languages or "eng", config=config,
                                         output_type=pytesseract.Output.DICT, timeout=timeout_s)
    except pytesseract.TesseractNotFoundError as exc:
        raise _missing_binary() from exc
    except pytesseract.TesseractError as exc:
        message = str(exc.message or exc)
        if "Failed loading language" in message or "Error opening data file" in message:
            raise ExtractionError("failed", f"tesseract has no language data for {languages!r}; "
                                            f"install it (e.g. apt-get install tesseract-ocr-<lang>)") from exc
        raise ExtractionError("failed", f"tesseract failed: {message.strip()[:300]}") from exc
    except RuntimeError as exc:  # pytesseract's own timeout (TesseractError, caught above, is a subclass)
        raise ExtractionError("timeout", f"OCR took longer than {timeout_s:.0f} s") from exc


def _words(data: dict[str, list], dx: int = 0, dy: int = 0) -> list[tuple[tuple[int, int, int], _Word]]:
    """Tesseract's rows -> ((block, paragraph, line), word) for the real words."""
    out = []
    for i, text in enumerate(data["text"]):
        text = str(text).strip()
        conf = float(data["conf"][i])
        if not text or conf < MIN_WORD_CONFIDENCE:
            continue
        x0, y0 = int(data["left"][i]) + dx, int(data["top"][i]) + dy
        word = _Word(text, x0, y0, x0 + int(data["width"][i]), y0 + int(data["height"][i]), conf)
        out.append(((int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i])), word))
    return out


def _orientation(image: Image.Image) -> int:
    """Degrees to rotate the image counter-clockwise to make it upright (0 when
    tesseract cannot tell: too little text, or no orientation data installed).
    Tesseract's "Rotate: N" means N degrees clockwise."""
    pytesseract = _tesseract()
    try:
        osd = pytesseract.image_to_osd(image, config="--psm 0", timeout=30)
    except (pytesseract.TesseractError, RuntimeError):
        return 0
    rotate = re.search(r"Rotate:\s*(\d+)", osd)
    confidence = re.search(r"Orientation confidence:\s*([\d.]+)", osd)
    if not rotate or not confidence or float(confidence.group(1)) < 1.0:
        return 0
    return -int(rotate.group(1)) % 360


# --------------------------------------------------------------------------------------
# Preparing the image; ruling lines
# --------------------------------------------------------------------------------------


def _prepare(image: Image.Image) -> tuple[Image.Image, float]:
    """Grayscale the image (alpha flattened onto white) and upscale small ones; returns the
    image and the factor its coordinates were multiplied by."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        span = max(float(array.max() - array.min()), 1.0)
        image = Image.fromarray(((array - array.min()) * 255 / span).astype(np.uint8))
    image = image.convert("L")
    factor = 1.0
    longest = max(image.size)
    if 0 < longest < MIN_SIDE_PX:
        factor = min(4.0, MIN_SIDE_PX / longest)
        image = image.resize((round(image.width * factor), round(image.height * factor)), Image.Resampling.LANCZOS)
    return image, factor


def _long_runs(dark: np.ndarray, length: int) -> np.ndarray:
    """Pixels that lie on a horizontal run of at least ``length`` dark pixels."""
    rows, cols = dark.shape
    if cols < length:
        return np.zeros_like(dark)
    sums = np.zeros((rows, cols + 1), np.int32)
    np.cumsum(dark, axis=1, out=sums[:, 1:])
    full = (sums[:, length:] - sums[:, :-length]) == length  # window [x, x + length) all dark
    starts = np.zeros((rows, full.shape[1] + 1), np.int32)
    np.cumsum(full, axis=1, out=starts[:, 1:])
    x = np.arange(cols)
    hi = np.minimum(x, full.shape[1] - 1) + 1
    lo = np.maximum(x - length + 1, 0)
    return (starts[:, hi] - starts[:, lo]) > 0


def _thin(dark: np.ndarray, reach: int, axis: int) -> np.ndarray:
    """Dark pixels that are not inside a filled area along ``axis``: a pixel with dark
    pixels ``reach`` away on both sides is shading (a coloured header row), not a rule."""
    before = np.zeros_like(dark)
    after = np.zeros_like(dark)
    if axis == 0:
        before[reach:] = dark[:-reach]
        after[:-reach] = dark[reach:]
    else:
        before[:, reach:] = dark[:, :-reach]
        after[:, :-reach] = dark[:, reach:]
    return dark & ~(before & after)


def _rulings(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of horizontal and vertical rules: thin dark runs longer than 1/15 of the
    page's shorter side (no letter is that long)."""
    dark = gray < DARK
    length = max(60, min(gray.shape) // 15)
    reach = max(4, min(gray.shape) // 400)  # rules are under ~0.6 mm thick at 300 dpi
    # Where rules cross, each is "thick" for the other and drops out of the other's
    # thin mask: bridge such short breaks so a rule is not cut into pieces at every cell.
    thin_h = _bridge(_thin(dark, reach, 0), 2 * reach, 1) & dark
    thin_v = _bridge(_thin(dark, reach, 1), 2 * reach, 0) & dark
    return _long_runs(thin_h, length), _long_runs(thin_v.T, length).T


def _bridge(mask: np.ndarray, gap: int, axis: int) -> np.ndarray:
    """Set pixels that have mask pixels within ``gap`` on both sides along ``axis``."""
    before = np.zeros_like(mask)
    after = np.zeros_like(mask)
    for d in range(1, gap + 1):
        if axis == 1:
            before[:, d:] |= mask[:, :-d]
            after[:, :-d] |= mask[:, d:]
        else:
            before[d:] |= mask[:-d]
            after[:-d] |= mask[d:]
    return mask | (before & after)


def _segments(mask: np.ndarray, vertical: bool) -> list["Segment"]:
    """Ruling line masks -> boxes (x0, y0, x1, y1), one per line (a line is several
    pixel rows thick)."""
    m = mask.T if vertical else mask
    boxes: list[list[int]] = []
    for r in np.flatnonzero(m.any(axis=1)):
        row = np.concatenate(([0], m[r].astype(np.int8), [0]))
        edges = np.flatnonzero(np.diff(row))
        for a, b in zip(edges[::2], edges[1::2]):
            for box in boxes[-8:]:
                if box[3] >= r - 1 and a <= box[2] and b >= box[0]:
                    box[0], box[2], box[3] = min(box[0], a), max(box[2], b), r
                    break
            else:
                boxes.append([int(a), int(r), int(b), int(r)])
    if vertical:
        return [(int(y0), int(x0), int(y1) + 1, int(x1) + 1) for x0, y0, x1, y1 in boxes]
    return [(int(x0), int(y0), int(x1), int(y1) + 1) for x0, y0, x1, y1 in boxes]


Segment = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels


@dataclass
class _Grid:
    """A ruled table: its box and its rules."""

    box: Segment
    horizontal: list[Segment]
    vertical: list[Segment]

    def row_rules(self) -> list[int]:
        """y of the horizontal rules that run (nearly) across the whole table: only
        these may cut it into bands; a rule under a spanning header cell may not."""
        width = self.box[2] - self.box[0]
        covered: dict[int, int] = {}  # rule y -> summed length of its pieces
        for b in self.horizontal:
            y = (b[1] + b[3]) // 2
            key = next((k for k in covered if abs(k - y) <= 10), y)
            covered[key] = covered.get(key, 0) + b[2] - b[0]
        ys = [y for y, length in covered.items()
              if length >= 0.9 * width and self.box[1] + 8 < y < self.box[3] - 8]
        return _dedupe(ys)

    def column_rules(self) -> list[int]:
        """x of the vertical rules inside the table."""
        xs = [(b[0] + b[2]) // 2 for b in self.vertical if self.box[0] + 8 < (b[0] + b[2]) // 2 < self.box[2] - 8]
        return _dedupe(xs)


def _dedupe(values: list[int], within: int = 10) -> list[int]:
    """Positions of one rule found in several pieces (broken where rules cross) -> one."""
    out: list[int] = []
    for v in sorted(values):
        if not out or v - out[-1] > within:
            out.append(v)
    return out


def _grids(horizontal: list[Segment], vertical: list[Segment]) -> list[_Grid]:
    """Cluster rules that touch into tables: at least two horizontal rules and one
    vertical rule, or three horizontal rules (tables ruled only between rows)."""
    lines = [(b, "h") for b in horizontal] + [(b, "v") for b in vertical]
    if len(lines) > MAX_RULES:
        return []  # hatching or a form drawn in lines: erase the lines, read it as text
    parent = list(range(len(lines)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    pad = 6
    for i, (a, _) in enumerate(lines):
        for j in range(i + 1, len(lines)):
            b = lines[j][0]
            if a[0] - pad <= b[2] and b[0] - pad <= a[2] and a[1] - pad <= b[3] and b[1] - pad <= a[3]:
                parent[find(i)] = find(j)
    clusters: dict[int, list[tuple[Segment, str]]] = {}
    for i, line in enumerate(lines):
        clusters.setdefault(find(i), []).append(line)
    grids = []
    for members in clusters.values():
        hs = [b for b, kind in members if kind == "h"]
        vs = [b for b, kind in members if kind == "v"]
        if len(_dedupe([(b[1] + b[3]) // 2 for b in hs])) < 2 or (not vs and len(hs) < 3):
            continue
        box = (min(b[0] for b, _ in members), min(b[1] for b, _ in members),
               max(b[2] for b, _ in members), max(b[3] for b, _ in members))
        grids.append(_Grid(box, hs, vs))
    return sorted(grids, key=lambda g: g.box[1])[:MAX_TABLES]


def _erase(gray: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """White out the mask, grown by two pixels to take the anti-aliased edges too."""
    grown = mask.copy()
    for _ in range(2):
        step = grown.copy()
        step[1:] |= grown[:-1]
        step[:-1] |= grown[1:]
        step[:, 1:] |= grown[:, :-1]
        step[:, :-1] |= grown[:, 1:]
        grown = step
    out = gray.copy()
    out[grown] = 255
    return out


# --------------------------------------------------------------------------------------
# Words -> paragraphs and tables
# --------------------------------------------------------------------------------------


def _join_lines(lines: list[str]) -> str:
    """Lines of one paragraph -> one string; a word hyphenated across lines is joined."""
    text = ""
    for line in lines:
        if not text:
            text = line
        elif re.search(r"[^\W\d_]-$", text) and line[:1].islower():
            text = text[:-1] + line
        else:
            text += " " + line
    return text


def _looks_like_text(text: str) -> bool:
    """A low-confidence paragraph is kept when it still reads like words (three or more
    words of two or more letters), so faint scans are not thrown away with the noise."""
    return len(re.findall(r"[^\W\d_]{2,}", text)) >= 3


def _paragraphs(words: list[tuple[tuple[int, int, int], _Word]]) -> list[OcrBlock]:
    groups: dict[tuple[int, int], dict[int, list[_Word]]] = {}
    for (block, par, line), word in words:
        groups.setdefault((block, par), {}).setdefault(line, []).append(word)
    out = []
    for lines in groups.values():
        members = [w for line in lines.values() for w in line]
        confidence = statistics.fmean(w.conf for w in members)
        text = _join_lines([" ".join(w.text for w in line) for line in lines.values()])
        if confidence < MIN_BLOCK_CONFIDENCE and not _looks_like_text(text):
            continue
        box = (min(w.x0 for w in members), min(w.y0 for w in members),
               max(w.x1 for w in members), max(w.y1 for w in members))
        out.append(OcrBlock("text", text, box, round(confidence, 1)))
    return out


def _text_lines(words: list[_Word]) -> list[list[_Word]]:
    """Words -> lines, top to bottom, by their vertical centres."""
    if not words:
        return []
    height = statistics.median(w.y1 - w.y0 for w in words)
    lines: list[list[_Word]] = []
    for word in sorted(words, key=lambda w: w.cy):
        if lines and abs(word.cy - statistics.fmean(w.cy for w in lines[-1])) <= 0.5 * height:
            lines[-1].append(word)
        else:
            lines.append([word])
    return lines


def _columns_from_gaps(words: list[_Word]) -> list[int]:
    """Column boundaries of a table without vertical rules: x-gaps that no word
    crosses, wider than about a letter height."""
    height = statistics.median(w.y1 - w.y0 for w in words)
    spans = sorted((w.x0, w.x1) for w in words)
    bounds = []
    reach = spans[0][1]
    for x0, x1 in spans[1:]:
        if x0 - reach >= 1.2 * height:
            bounds.append((reach + x0) // 2)
        reach = max(reach, x1)
    return bounds


def _unshade(pixels: np.ndarray) -> np.ndarray:
    """A shaded band (a coloured header row) -> black text on white; tesseract's own
    thresholding would turn the shading black along with the text."""
    if pixels.size == 0 or np.count_nonzero((pixels > 100) & (pixels < 225)) < 0.2 * pixels.size:
        return pixels
    return np.where(pixels > 128, 255, 0).astype(np.uint8)


RULE_CHARS = re.compile(r"^[|_\-\u2014\u2013=~.:;,'\"`\u00ab\u00bb]+$")
BAND_GAP = 40  # px of white between the bands stacked for tesseract
INSET = 5  # px kept clear of the rules around a band


def _read_table(grid: _Grid, clean: np.ndarray, languages: str, timeout_s: float) -> OcrBlock | None:
    """Read a ruled table: its bands (between full-width rules) are cut out, cleaned and
    stacked into one image that tesseract reads as a uniform block (``--psm 6``), which,
    unlike the automatic layout, keeps every row and every lone digit; the words are
    then put back into rows and columns by position."""
    x0, y0, x1, y1 = grid.box
    edges = [y0] + grid.row_rules() + [y1]
    bands = [(top + INSET, bottom - INSET) for top, bottom in zip(edges, edges[1:]) if bottom - top > 2 * INSET + 8]
    if not bands:
        return None
    left, right = x0 + INSET, x1 - INSET
    stack = np.full((sum(b - t for t, b in bands) + BAND_GAP * (len(bands) + 1), right - left), 255, np.uint8)
    offsets = []
    y = BAND_GAP
    for top, bottom in bands:
        stack[y:y + bottom - top] = _unshade(clean[top:bottom, left:right])
        offsets.append((y, top))
        y += bottom - top + BAND_GAP
    words: list[_Word] = []
    band_of: list[int] = []
    for _, w in _words(_run(Image.fromarray(stack), languages, CELLS_CONFIG, timeout_s)):
        if RULE_CHARS.match(w.text):
            continue
        k = max((i for i, (start, _) in enumerate(offsets) if start - BAND_GAP // 2 <= w.cy), default=0)
        shift = offsets[k][1] - offsets[k][0]
        words.append(_Word(w.text, w.x0 + left, w.y0 + shift, w.x1 + left, w.y1 + shift, w.conf))
        band_of.append(k)
    return _table(grid, words, band_of, len(bands))


def _table(grid: _Grid, words: list[_Word], band_of: list[int], band_count: int) -> OcrBlock | None:
    """Words read inside a ruled table -> a Markdown table (None when it is a single
    cell: a framed paragraph, not a table)."""
    if not words:
        return None
    cols = grid.column_rules() or _columns_from_gaps(words)

    def column(w: _Word) -> int:
        return sum(1 for c in cols if (w.x0 + w.x1) / 2 > c)

    # A letter or two sitting on a column rule is what is left of a rule tesseract saw.
    kept = [(w, k) for w, k in zip(words, band_of)
            if len(w.text) > 2 or not any(w.x0 <= c <= w.x1 for c in cols)]
    words, band_of = [w for w, _ in kept], [k for _, k in kept]

    # A band between two full-width rules holds one row whose cells may wrap, or, when
    # a table is ruled only here and there, several rows: lines that each fill most
    # of the columns are rows of their own.
    rows: list[list[_Word]] = []
    for band in range(band_count):
        lines = _text_lines([w for w, k in zip(words, band_of) if k == band])
        filled = [len({column(w) for w in line}) for line in lines]
        if len(lines) > 1 and max(filled) >= 2 and min(filled) >= 0.6 * max(filled):
            rows.extend(lines)
        elif lines:
            rows.append([w for line in lines for w in line])
    if not cols and len(rows) < 2:
        return None
    table: list[list[str]] = []
    for row in rows:
        cells: list[list[_Word]] = [[] for _ in range(len(cols) + 1)]
        for w in row:
            cells[column(w)].append(w)
        table.append([" ".join(w.text for line in _text_lines(cell) for w in sorted(line, key=lambda w: w.x0))
                      for cell in cells])
    keep = [k for k in range(len(cols) + 1) if any(row[k] for row in table)]  # a rule drawn twice, a margin
    if len(keep) < 2:
        return None
    table = [[row[k] for k in keep] for row in table]
    confidence = statistics.fmean(w.conf for w in words)
    return OcrBlock("table", markdown_table(table), grid.box, round(confidence, 1), rows=table)


# --------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------


def _read(gray: Image.Image, languages: str, timeout_s: float) -> list[OcrBlock]:
    """One upright grayscale page -> blocks in reading order."""
    pixels = np.asarray(gray)
    horizontal_mask, vertical_mask = _rulings(pixels)
    grids = _grids(_segments(horizontal_mask, False), _segments(vertical_mask, True))
    rules = horizontal_mask | vertical_mask
    clean = _erase(pixels, rules) if rules.any() else pixels
    text_pixels = clean.copy()
    tables: list[OcrBlock] = []
    for grid in grids:
        x0, y0, x1, y1 = grid.box
        table = _read_table(grid, clean, languages, timeout_s)
        if table is not None:
            tables.append(table)
            text_pixels[y0:y1, x0:x1] = 255
    blocks = _paragraphs(_words(_run(Image.fromarray(text_pixels), languages, TEXT_CONFIG, timeout_s)))
    for table in tables:  # a table goes before the first paragraph that starts below it
        k = next((i for i, b in enumerate(blocks) if b.bbox[1] >= table.bbox[1]), len(blocks))
        blocks.insert(k, table)
    return blocks


def _quality(blocks: list[OcrBlock]) -> float:
    """Mean confidence weighted by text length (0 for nothing read)."""
    total = sum(len(b.text) for b in blocks)
    return sum(b.confidence * len(b.text) for b in blocks) / total if total else 0.0


def ocr_page(image: Image.Image, languages: str = "eng", timeout_s: float = 0) -> list[OcrBlock]:
    """OCR one page image: paragraphs and ruled tables in reading order, boxes in the
    pixel coordinates of ``image``; ``languages`` "auto" picks them by the script on the
    image (see resolve_languages). Raises ExtractionError("failed") when tesseract is
    missing or lacks the language data asked for."""
    gray, factor = _prepare(image)
    languages = resolve_languages(languages, gray)
    blocks = _read(gray, languages, timeout_s)
    if _quality(blocks) < RETRY_CONFIDENCE:
        turn = _orientation(gray)
        if turn:
            upright = gray.rotate(turn, expand=True, fillcolor=255)
            retry = _read(upright, languages, timeout_s)
            if _quality(retry) > _quality(blocks):
                blocks = retry
                for b in blocks:
                    b.bbox = _unrotate(b.bbox, turn, gray.size)
    for b in blocks:
        b.bbox = (b.bbox[0] / factor, b.bbox[1] / factor, b.bbox[2] / factor, b.bbox[3] / factor)
    return blocks


def _unrotate(box: Box, turn: int, size: tuple[int, int]) -> Box:
    """A box found on the image rotated ``turn`` degrees counter-clockwise -> the same box
    on the original image (``size`` is the original's width and height)."""
    width, height = size
    x0, y0, x1, y1 = box
    if turn == 90:  # upright (x, y) came from original (width - y, x)
        return (width - y1, x0, width - y0, x1)
    if turn == 180:
        return (width - x1, height - y1, width - x0, height - y0)
    if turn == 270:  # upright (x, y) came from original (y, height - x)
        return (y0, height - x1, y1, height - x0)
    return box
