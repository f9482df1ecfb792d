"""Images (PNG, JPEG, TIFF, GIF, BMP, WebP): OCR every frame.

A multi-page TIFF (a fax, a scanner's batch) is one document whose frames are its pages;
an animated GIF is read the same way. Boxes are given in points (1/72 inch) using the
image's own resolution, or 72 dpi when it declares none, so they compare with PDF boxes.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageSequence, UnidentifiedImageError

from ingot.ingest.elements import Element, Extraction, ExtractionError, ExtractOptions
from ingot.ingest.extract.ocr import ocr_page

MAX_FRAMES = 2000  # more frames than any scanned document has: an animation, not pages
MAX_PIXELS = 200_000_000  # per frame; PIL's own bomb check stops at about twice its 89M default


def _open(data: bytes) -> Image.Image:
    """Open and sanity-check an image; the error says why it cannot be read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.size  # noqa: B018 - parsing the header is what may fail
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ExtractionError("too_large", f"the image is too large to OCR safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ExtractionError("corrupt", "not a readable image: the format is unknown or the file is damaged") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ExtractionError("corrupt", f"not a readable image: {exc}") from exc
    if image.width * image.height > MAX_PIXELS:
        raise ExtractionError("too_large", f"the image is {image.width}x{image.height} pixels, over the OCR limit")
    return image


def _points_per_pixel(image: Image.Image) -> tuple[float, float]:
    """From the image's resolution (dpi) to PDF points; 72 dpi (1 px = 1 pt) when the
    file does not say or says something implausible."""
    dpi = image.info.get("dpi")
    try:
        x, y = float(dpi[0]), float(dpi[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return 1.0, 1.0
    if not (20 <= x <= 4800 and 20 <= y <= 4800):
        return 1.0, 1.0
    return 72.0 / x, 72.0 / y


def _frames(image: Image.Image):
    """Each frame loaded on its own (a truncated later frame fails there, with a clear
    error, not as a crash)."""
    for index, frame in enumerate(ImageSequence.Iterator(image)):
        if index >= MAX_FRAMES:
            break
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PIL warns about damaged metadata; the pixels may still be fine
                frame.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise ExtractionError("corrupt", f"page {index + 1} of the image cannot be read: {exc}") from exc
        yield index + 1, frame.copy()


def extract(data: bytes, options: ExtractOptions) -> Extraction:
    """OCR each frame of an image; one ``image-text`` element per paragraph, a ``table``
    element per ruled table. With ``options.ocr`` off nothing can be read: the page
    count is still given."""
    image = _open(data)
    with image:
        if not options.ocr:
            return Extraction(elements=[], pages=getattr(image, "n_frames", 1))
        elements: list[Element] = []
        pages = 0
        for number, frame in _frames(image):
            pages = number
            sx, sy = _points_per_pixel(frame)
            for block in ocr_page(frame, options.ocr_languages):
                x0, y0, x1, y1 = block.bbox
                bbox = (round(x0 * sx, 2), round(y0 * sy, 2), round(x1 * sx, 2), round(y1 * sy, 2))
                for text, part in block.parts(options.table_rows_per_element):
                    elements.append(Element(
                        kind="table" if block.kind == "table" else "image-text", text=text, page=number,
                        location=f"page {number}", bbox=bbox,
                        meta={"ocr": True, "confidence": block.confidence, **part}))
    return Extraction(elements=elements, pages=pages)
