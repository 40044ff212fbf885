"""The verdict at the top of a run's report: `harness.verdict` rendered as HTML.

Every sentence is text from the run's files (target labels, server errors), so it is escaped
here, and every link goes to an id of this page (`harness.verdict.anchors`).
"""

from __future__ import annotations

from harness.report.formatting import esc
from harness.report.run_data import RunData
from harness.verdict.anchors import section_anchor
from harness.verdict.ranking import verdict
from harness.verdict.text import Kind, Sentence

HEADINGS: dict[Kind, str] = {"ranking": "Capacity under the SLO",
                             "reason": "Why the others hold less",
                             "caveat": "Before you rely on it"}


def verdict_section(run: RunData) -> str:
    """The verdict's section, or "" when the data supports no sentence."""
    result = verdict(run.summary, run.manifest, list(run.targets))
    if not result.sentences:
        return ""
    parts = [f"<section id='{section_anchor('verdict')}' class='callout'><h2>Verdict</h2>"]
    alone = len({p.target for p in run.summary.points}) == 1
    for kind, heading in HEADINGS.items():
        sentences = result.of_kind(kind)
        if sentences:
            heading = "What limits it" if kind == "reason" and alone else heading
            items = "".join(f"<li>{sentence_html(s)}</li>" for s in sentences)
            parts.append(f"<h3>{heading}</h3><ul class='verdict-{kind}'>{items}</ul>")
    parts.append("</section>")
    return "".join(parts)


def sentence_html(sentence: Sentence) -> str:
    """The sentence, escaped, followed by its evidence links."""
    links = ", ".join(f"<a href='#{esc(link.anchor)}'>{esc(link.label)}</a>"
                      for link in sentence.links)
    return esc(sentence.text) + (f" <span class='muted'>(see {links})</span>" if links else "")
