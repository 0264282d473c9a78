"""The scan report for tools (JSON) and for people (Markdown, self-contained HTML)."""

from __future__ import annotations

import html

from bridge.firmware.models import ScanReport, TouchPoint

__all__ = ["to_html", "to_json", "to_markdown"]


def to_json(report: ScanReport) -> str:
    return report.model_dump_json(indent=2)


def _summary(report: ScanReport) -> str:
    counts = report.counts()
    return (
        f"{report.files_scanned} files scanned, {len(report.files)} with AWS IoT usage, "
        f"{report.files_skipped} skipped; "
        f"stacks: {', '.join(report.stacks) or 'none'}; "
        f"{counts['rewritten']} touch points rewritten, {counts['needs_human']} need a human"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: ScanReport) -> str:
    lines = [f"# Firmware scan: {report.root}", "", _summary(report), ""]
    lines += ["| file | line | stack | kind | verdict | reason |", "|---|---|---|---|---|---|"]
    for file in report.files:
        stack = file.stack + (" (vendored)" if file.vendored else "")
        lines.extend(
            f"| {_cell(p.file)} | {p.line} | {stack} | {p.kind} | {p.verdict} | {_cell(p.reason)} |"
            for p in file.touch_points
        )
    if report.skipped:
        lines += ["", "Not scanned (binaries are only counted):", ""]
        lines += ["| file | why |", "|---|---|"]
        lines.extend(f"| {_cell(s.file)} | {_cell(s.reason)} |" for s in report.skipped)
    return "\n".join(lines) + "\n"


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
    ".rewritten{background:#e6f4ea}.needs_human{background:#fdecea}"
)


def _row(point: TouchPoint, stack: str) -> str:
    cells = (point.file, str(point.line), stack, point.kind, point.verdict, point.reason)
    body = "".join(f"<td>{html.escape(cell)}</td>" for cell in cells)
    return f'<tr class="{point.verdict}">{body}</tr>'


def to_html(report: ScanReport) -> str:
    """One HTML file with inline style: no scripts, fonts or links to fetch."""
    rows = "\n".join(
        _row(point, file.stack + (" (vendored)" if file.vendored else ""))
        for file in report.files
        for point in file.touch_points
    )
    head = "".join(f"<th>{name}</th>" for name in ("file", "line", "stack", "kind", "verdict"))
    head = f"<tr>{head}<th>reason</th></tr>"
    skipped = ""
    if report.skipped:
        items = "".join(
            f"<tr><td>{html.escape(s.file)}</td><td>{html.escape(s.reason)}</td></tr>"
            for s in report.skipped
        )
        skipped = (
            "<h2>Not scanned</h2><p>Binaries are only counted.</p>"
            f"<table><tr><th>file</th><th>why</th></tr>{items}</table>"
        )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>Firmware scan: {html.escape(report.root)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>Firmware scan: {html.escape(report.root)}</h1>"
        f"<p>{html.escape(_summary(report))}</p><table>{head}\n{rows}</table>{skipped}</body></html>\n"
    )
