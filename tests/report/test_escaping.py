"""Untrusted strings in the report: config values, class names and run labels must come out of the HTML as text.
(The full report with a hostile title and class names is checked in test_report.py; these cases are quick.)"""

from __future__ import annotations

import re

import pytest

from lskd.report.render import md_escape, md_table, render_html

HOSTILE = [
    ("script tag", "<script>alert(1)</script>"),
    ("event handler", "<img src=x onerror=alert(1)>"),
    ("Markdown link to javascript:", "[click](javascript:alert(1))"),
    ("Markdown image from the web", "![x](http://evil.example/x.png)"),
    ("reference link", "[x][1]\n\n[1]: javascript:alert(1)"),
    ("autolink", "<http://evil.example>"),
    ("entity smuggling", "&lt;script&gt;"),
]


def _page(value: str) -> str:
    """``value`` as a report title, as a sentence, and as a run label in a table, rendered to the HTML page."""
    md = f"# {md_escape(value)}\n\nRun {md_escape(value)} finished.\n\n"
    md += str(md_table([[value, "kd", 71.5]], ["teacher", "method", "top-1"])) + "\n"  # str: Markup + str escapes
    return render_html(md, value, [], "figures")


@pytest.mark.parametrize("name,value", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_labels_are_rendered_as_text(name, value):
    """Failure: a config value, class name or run label carries markup. Behaviour: no tag, link, image or external
    reference reaches the HTML; the text is shown instead."""
    html = _page(value)
    body = html.split("<body>", 1)[1]
    tags = re.findall(r"<[^>]*>", body)
    assert not [t for t in tags if re.match(r"<(script|img|a|iframe|link)\b", t, re.IGNORECASE)], tags
    assert not [t for t in tags if re.search(r"src|href|javascript:|on\w+=", t, re.IGNORECASE)], tags
    assert "<script" not in html.lower()


def test_escaped_text_still_reads_as_the_original():
    html = _page("[click](javascript:alert(1)) <b>")
    assert "[click](javascript:alert(1)) &lt;b&gt;" in html
