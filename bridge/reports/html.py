"""One look for every page the bridge writes: a self-contained HTML document, styles inline."""

from __future__ import annotations

from html import escape

__all__ = ["STYLE", "document", "table"]

# Inline, system fonts only: a report opened from a laptop on a plane looks the same.
STYLE = """
*{box-sizing:border-box}
body{margin:0;background:#f1f5f9;color:#0f172a;font:14px/1.45 system-ui,-apple-system,
 "Segoe UI",Roboto,sans-serif}
header{background:#0f172a;color:#f8fafc;padding:14px 28px;display:flex;align-items:baseline;
 gap:16px;flex-wrap:wrap}
header h1{font-size:19px;margin:0;font-weight:600}
header .sub{color:#94a3b8;font-size:13px}
main{padding:18px 28px;max-width:1180px;margin:0 auto}
h2{font-size:15px;margin:0 0 10px;font-weight:600}
h3{font-size:14px;margin:14px 0 6px}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:14px 16px;
 margin-bottom:14px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(124px,1fr));gap:12px;
 margin-bottom:14px}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:14px}
.kpi{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:10px 14px}
.kpi .n{font-size:24px;font-weight:650;font-variant-numeric:tabular-nums;
 white-space:nowrap}
.kpi .l{color:#64748b;font-size:12px}
.kpi.bad{border-color:#fca5a5;background:#fef2f2}.kpi.bad .n{color:#b91c1c}
.kpi.warn{border-color:#fcd34d;background:#fffbeb}
.verdict{border-radius:10px;padding:12px 16px;margin-bottom:14px;font-size:15px;
 border:1px solid}
.verdict.go{background:#f0fdf4;border-color:#86efac;color:#14532d}
.verdict.hold{background:#fef2f2;border-color:#fca5a5;color:#7f1d1d}
.verdict b{font-size:17px}
.verdict ul{margin:6px 0 0;padding-left:20px}
table{border-collapse:collapse;width:100%;font-size:13px}
th{text-align:left;color:#64748b;font-weight:500;border-bottom:1px solid #e2e8f0;padding:5px 8px}
td{border-bottom:1px solid #f1f5f9;padding:5px 8px;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;margin-top:10px;font-size:13px}
.legend span.sw{display:inline-block;width:11px;height:11px;border-radius:3px;
 margin-right:5px;vertical-align:-1px}
.muted{color:#64748b}
.pill{display:inline-block;border-radius:99px;padding:1px 9px;font-size:12px;
 background:#e2e8f0}
.pill.failed,.pill.rolled_back{background:#fee2e2;color:#991b1b}
.pill.stuck{background:#fef3c7;color:#92400e}
.pill.cut_over{background:#dcfce7;color:#166534}
.bar{height:10px;background:#e2e8f0;border-radius:5px;overflow:hidden;min-width:120px}
.bar i{display:block;height:100%;background:#16a34a}
svg{max-width:100%;height:auto;display:block}
.card svg.wide{width:100%}
code{font-size:12px;background:#f1f5f9;padding:1px 4px;border-radius:4px}
"""


def document(title: str, body: str, *, subtitle: str = "", script: str = "") -> str:
    """A whole HTML page: header, body, optional inline script; nothing loaded from elsewhere."""
    sub = f"<span class='sub' id='subtitle'>{escape(subtitle)}</span>" if subtitle else ""
    tail = f"<script>{script}</script>" if script else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{escape(title)}</h1>{sub}</header><main>{body}</main>{tail}</body></html>"
    )


def table(
    headers: list[str], rows: list[list[str]], *, numeric: frozenset[int] = frozenset()
) -> str:
    """A table of already-escaped cells; column indexes in `numeric` align right."""

    def cls(i: int) -> str:
        return " class='num'" if i in numeric else ""

    head = "".join(f"<th{cls(i)}>{h}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{cell}</td>" for i, cell in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
