"""Charts as data: the title and a Markdown table of categories x series values.

A chart is a picture to the reader but its data is what a question asks about ("what was
Q3 revenue?"), and every chart part caches the values it plots (``c:numCache`` /
``c:strCache``), so they can be read without the workbook the chart came from. The chart
part has the same DrawingML schema in PowerPoint and Excel files, so both extractors use
python-pptx's chart model here: PowerPoint hands over ``shape.chart``; Excel parses the
part with :func:`chart_from_xml`.

Table shape: header ``["", series names...]`` (``"x"`` in the corner for scatter charts),
then one row per category (or X value). Dates on a date axis are ISO dates; plot kinds
python-pptx cannot model (3-D bar, surface, stock, ...) are read from the XML caches.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from lxml import etree
from pptx.chart.chart import Chart
from pptx.chart.series import XySeries
from pptx.oxml import parse_xml
from pptx.oxml.ns import qn

from ingot.ingest.elements import Element, markdown_table

EPOCH_1900 = datetime(1899, 12, 30)  # Excel's serial 1 is 1900-01-01 (with its 1900 leap-year bug)
EPOCH_1904 = datetime(1904, 1, 1)


def chart_from_xml(data: bytes) -> Chart:
    """A chart part's XML (``xl/charts/chart1.xml``) as python-pptx's read-only chart model.
    No package part is attached: only the cached values are read, never the embedded workbook."""
    return Chart(parse_xml(data), None)


def _number(value) -> str:
    """Chart values are floats; print 120.0 as ``120`` and a missing point as empty."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _chart_title(chart) -> str:
    if not chart.has_title:
        return ""
    frame = chart.chart_title.text_frame if chart.chart_title.has_text_frame else None
    return " ".join(frame.text.split()) if frame is not None else ""


def _xy_labels(series) -> list[str]:
    """X values of a scatter/bubble series, which python-pptx does not expose."""
    return [_cached_value(v) for v in _cached_points(series._element.xVal)]


def _category_labels(chart, plot) -> list[str]:
    """Category labels, hierarchical levels joined with `` / ``. Date axes cache Excel
    serial numbers (``37261.0``); those are shown as ISO dates when the cached number
    format is a date format, read from ``c:formatCode`` because python-pptx omits it."""
    labels = [" / ".join(str(x) for x in flat if x) for flat in plot.categories.flattened_labels]
    codes = plot._element.xpath("./c:ser[1]/c:cat/c:numRef/c:numCache/c:formatCode/text()")
    if not codes or not _is_date_format(codes[0]):
        return [_cached_value(label) for label in labels]
    epoch = EPOCH_1904 if chart._chartSpace.xpath("./c:date1904[@val='1' or @val='true']") else EPOCH_1900
    return [_serial_to_date(label, epoch) for label in labels]


def _is_date_format(code: str) -> bool:
    """Excel number format looks like a date: has d or y, or m without digit placeholders."""
    plain = re.sub(r'"[^"]*"|\[[^\]]*\]', "", code).lower()
    return "d" in plain or "y" in plain or ("m" in plain and not re.search(r"[0#]", plain))


def _as_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _serial_to_date(label: str, epoch: datetime) -> str:
    value = _as_float(label)
    if value is None:
        return label
    moment = epoch + timedelta(days=value)
    return moment.date().isoformat() if moment.time() == datetime.min.time() else moment.isoformat(sep=" ")


def _chart_rows(chart) -> list[list[str]]:
    """Header ``[category, series...]`` then one row per category. Categories come from the
    first plot (combo charts share them); scatter charts use the first series' X values."""
    series = [s for plot in chart.plots for s in plot.series]
    if not series:
        return []
    first_plot = chart.plots[0]
    if isinstance(series[0], XySeries):  # scatter and bubble
        labels, corner = _xy_labels(series[0]), "x"
    else:
        labels = _category_labels(chart, first_plot)
        corner = ""
    values = [list(s.values) for s in series]
    count = max([len(labels)] + [len(v) for v in values])
    labels += [str(i + 1) for i in range(len(labels), count)]
    header = [corner] + [s.name or f"Series {i + 1}" for i, s in enumerate(series)]
    body = [[labels[i]] + [_number(v[i]) if i < len(v) else "" for v in values] for i in range(count)]
    return [header, *body]


def _cached_points(parent) -> list[str]:
    """Values of a ``c:strCache``/``c:numCache`` (first level of a multi-level cache) by index."""
    if parent is None:
        return []
    level = parent.find(".//" + qn("c:lvl"))
    points = {int(pt.get("idx")): pt.findtext(qn("c:v")) or "" for pt in (level if level is not None else parent).iter(qn("c:pt"))}
    return [points.get(i, "") for i in range(max(points, default=-1) + 1)]


def _cached_value(text: str) -> str:
    """A cached point as shown: numbers without a trailing ``.0``, text as is."""
    value = _as_float(text)
    return _number(value) if value is not None else text


def _chart_rows_from_xml(chart) -> list[list[str]]:
    """Same table as ``_chart_rows`` for plot kinds python-pptx refuses (3-D bar, surface,
    stock, ...), read from the series caches because the library has no API for them."""
    sers = chart._chartSpace.xpath("./c:chart/c:plotArea/*/c:ser")
    if not sers:
        return []
    first = sers[0]
    labels = _cached_points(first.find(qn("c:cat"))) or _cached_points(first.find(qn("c:xVal")))
    names = [" ".join(ser.xpath("./c:tx//c:v/text()")) or f"Series {i + 1}" for i, ser in enumerate(sers)]
    values = [_cached_points(ser.find(qn("c:val"))) or _cached_points(ser.find(qn("c:yVal"))) for ser in sers]
    count = max([len(labels)] + [len(v) for v in values])
    labels += [str(i + 1) for i in range(len(labels), count)]
    body = [[labels[i]] + [_cached_value(v[i]) if i < len(v) else "" for v in values] for i in range(count)]
    return [[""] + names, *body]


def chart_element(chart: Chart, common: dict) -> Element | None:
    """Chart title plus its data as a Markdown table (``meta["chart_type"]`` names the kind);
    None for a chart without title or data. ``common`` holds the element's provenance."""
    title = _chart_title(chart)
    meta: dict = {"title": title} if title else {}
    try:
        rows = _chart_rows(chart)
        meta["chart_type"] = chart.chart_type.name
    except (NotImplementedError, ValueError, KeyError):  # python-pptx: "unsupported plot type"
        rows = _chart_rows_from_xml(chart)
        kinds = chart._chartSpace.xpath("./c:chart/c:plotArea/*[c:ser]")
        meta["chart_type"] = etree.QName(kinds[0]).localname if kinds else "unknown"
    text = "\n\n".join(part for part in (title, markdown_table(rows)) if part)
    return Element(kind="chart", text=text, meta=meta, **common) if text else None
