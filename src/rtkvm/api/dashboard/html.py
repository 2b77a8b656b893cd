"""The dashboard's HTML: escaping, the page frame, tables and state badges.

Every page is server-rendered from these few pieces with one inline style
sheet: nothing is fetched at run time. Text from the database is always
escaped here (a host or server name is user input). This module must not
read the database or know the routes' logic.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#1d2530;background:#f6f7f9}
header{background:#1d2530;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:center}
header a{color:#cfe3ff;text-decoration:none}header a.on{color:#fff;font-weight:bold}
header .who{margin-left:auto;font-size:13px;color:#aab}main{padding:1em 1.5em}
table{border-collapse:collapse;margin:.5em 0;background:#fff}
td,th{border:1px solid #ccd;padding:3px 8px;font-size:13px;vertical-align:top}
th{background:#e8ebf0;text-align:left}h1{font-size:22px}h2{font-size:17px;margin-top:1.4em}
.badge{display:inline-block;padding:0 6px;border-radius:8px;font-size:12px;color:#fff}
.b-ok{background:#2e7d32}.b-bad{background:#c62828}.b-warn{background:#b26a00}
.b-none{background:#78909c}.warn{background:#fff3cd;border:1px solid #e0b000;padding:.4em 1em}
.map{display:flex;gap:1em;flex-wrap:wrap}.node{background:#fff;border:1px solid #ccd;padding:.5em}
.core{display:flex;gap:2px;margin:2px 0}.cpu{width:96px;min-height:38px;font-size:11px;
padding:2px;border:1px solid #999;border-radius:3px;overflow:hidden}
.cpu b{display:block}.r-housekeeping{background:#e3f2fd}.r-rt{background:#ffe0b2}
.r-dataplane{background:#d1c4e9}.r-unassigned{background:#eee}.cpu.shared{border:2px dashed #c62828}
.legend span{margin-right:1em;padding:0 6px;border:1px solid #999}
.legend .shared{border:2px dashed #c62828}
form.login{background:#fff;padding:1.5em;max-width:30em;border:1px solid #ccd}
input[type=password]{width:100%;padding:.4em;margin:.5em 0}
"""

GOOD = {"up", "ready", "verified", "done", "active", "qualified"}
BAD = {"down", "degraded", "error", "not-ready", "drift", "failed"}
WARN = {"not-assured", "waived", "running", "queued", "building", "deleting", "scheduling",
        "stopped", "stopping", "starting", "rebooting", "rebooting-hard", "stale",
        "abandoned"}  # fmt: skip

NAV = (("hosts", "Hosts"), ("servers", "Servers"), ("networks", "Networks"),
       ("measurements", "Measurements"))  # fmt: skip


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def badge(state: str) -> str:
    kind = "ok" if state in GOOD else "bad" if state in BAD else "warn" if state in WARN else "none"
    return f'<span class="badge b-{kind}">{esc(state)}</span>'


def link(href: str, text: object) -> str:
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str = "none") -> str:
    """A table of cells that are already HTML (escape text with :func:`esc` first)."""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        return f"<p><em>{esc(empty)}</em></p>"
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return f"<table><tr>{head}</tr>{body}</table>"


def page(title: str, body: str, *, who: str, active: str = "") -> str:
    nav = "".join(
        f'<a href="/ui/{key}"{" class=on" if key == active else ""}>{label}</a>'
        for key, label in NAV
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)} · rtkvm</title><style>{STYLE}</style></head><body>"
        f"<header><strong>rtkvm</strong>{nav}<span class=who>{esc(who)} · "
        '<a href="/ui/logout">log out</a></span></header>'
        f"<main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )


def login_page(message: str = "") -> str:
    """The token form; a small script sends it as a bearer token, the API sets the cookie."""
    note = f'<p class="warn" role="alert">{esc(message)}</p>' if message else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>log in · rtkvm'
        f"</title><style>{STYLE}</style></head><body><main><h1>rtkvm</h1>{note}"
        '<form class="login" id="login"><label for="token">API token</label>'
        '<input type="password" id="token" autocomplete="off" required>'
        '<button type="submit" id="go">Log in</button>'
        '<p id="why" role="alert"></p></form></main><script>'
        "document.getElementById('login').addEventListener('submit',async e=>{"
        "e.preventDefault();const t=document.getElementById('token').value.trim();"
        "const r=await fetch('/ui/session',{method:'POST',headers:{'Authorization':'Bearer '+t,"
        "'Content-Type':'application/json'},body:'{}'});"
        "if(r.ok){location.href=(await r.json()).home}else{"
        "document.getElementById('why').textContent=(await r.json()).detail}});"
        "</script></body></html>"
    )
