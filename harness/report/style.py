"""The one inline stylesheet shared by run reports and the index: readable on a phone, printable.

No web fonts and no external resources: the system font stack only.
"""

from __future__ import annotations

CSS = """
:root { --fg: #1d2330; --muted: #5b6472; --line: #d9dee6; --bg-alt: #f5f7fa;
  --accent: #1f5fbf; --warn-bg: #fff6e0; --warn-line: #e0a800; --err-bg: #fdecec;
  --err-line: #c62828; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff; line-height: 1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 20px 24px 48px; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.25rem; margin: 32px 0 10px; padding-bottom: 4px;
  border-bottom: 2px solid var(--line); }
h3 { font-size: 1.1rem; margin: 26px 0 6px; display: flex; align-items: center; gap: 8px;
  flex-wrap: wrap; }
h4 { font-size: 0.98rem; margin: 18px 0 6px; }
p { margin: 6px 0; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 0.86em; }
pre { background: var(--bg-alt); border: 1px solid var(--line); border-radius: 6px;
  padding: 10px 12px; overflow-x: auto; white-space: pre-wrap; word-break: break-word; }
.description { font-size: 1.02rem; color: var(--muted); margin: 2px 0 14px; }
.muted, .facts { color: var(--muted); }
.facts { font-size: 0.92rem; }
.meta { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr));
  gap: 4px 20px; margin: 10px 0 0; padding: 12px 14px; background: var(--bg-alt);
  border-radius: 8px; }
.meta div { min-width: 0; overflow-wrap: anywhere; }
.meta span { display: block; font-size: 0.74rem; text-transform: uppercase;
  letter-spacing: 0.04em; color: var(--muted); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr));
  gap: 14px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 8px;
  break-inside: avoid; page-break-inside: avoid; }
figure img { display: block; width: 100%; height: auto; }
figcaption { font-size: 0.85rem; color: var(--muted); padding: 4px 4px 0; }
.nodata { padding: 40px 10px; text-align: center; color: var(--muted); }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; margin: 8px 0; }
table { border-collapse: collapse; font-size: 0.88rem; width: 100%; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
thead th { background: var(--bg-alt); font-weight: 600; white-space: nowrap;
  text-align: center; }
tbody tr:nth-child(even) { background: #fafbfc; }
tbody th { font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.too-few { color: #9aa1ab; font-style: italic; cursor: help; }
td.too-few::after { content: " *"; }
table.points { font-size: 0.84rem; }
table.points th, table.points td { padding: 4px 6px; }
table.points thead th { font-size: 0.8rem; line-height: 1.2; }
tr.flagged { background: var(--warn-bg) !important; }
.badge { display: inline-block; padding: 1px 7px; margin: 1px 2px; border-radius: 10px;
  background: var(--warn-bg); border: 1px solid var(--warn-line); color: #7a5600;
  font-size: 0.8rem; white-space: nowrap; }
.err { color: var(--err-line); white-space: nowrap; }
.swatch { display: inline-block; width: 14px; height: 14px; border-radius: 3px; }
.status { font-size: 0.78rem; padding: 1px 8px; border-radius: 10px; font-weight: 600; }
.status.ok { background: #e6f4ea; color: #1e6b34; }
.status.bad { background: var(--err-bg); color: var(--err-line); }
.callout { border-left: 4px solid; border-radius: 4px; padding: 8px 12px; margin: 8px 0; }
.callout ul { margin: 4px 0 0; padding-left: 20px; }
.callout.warn { background: var(--warn-bg); border-color: var(--warn-line); }
.callout.error { background: var(--err-bg); border-color: var(--err-line); }
.note { font-size: 0.9rem; background: var(--bg-alt); padding: 6px 10px; border-radius: 4px; }
details { margin: 10px 0; }
details > summary { cursor: pointer; font-weight: 600; color: var(--accent); }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 6px 0;
  font-size: 0.88rem; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; overflow-wrap: anywhere; }
dl.kv.pairs { grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 0 20px; }
dl.kv.pairs div { display: flex; justify-content: space-between; gap: 10px; min-width: 0;
  border-bottom: 1px dotted var(--line); padding: 2px 0; }
dl.kv.pairs dd { text-align: right; }
table.dists { width: auto; min-width: min(100%, 720px); }
table.glossary td code, table.glossary th code { white-space: normal; }
table.glossary .key { font-weight: normal; }
a { color: var(--accent); }
footer { margin-top: 36px; font-size: 0.82rem; color: var(--muted); }
@media (max-width: 560px) {
  main { padding: 12px 10px 32px; }
  .charts { grid-template-columns: 1fr; }
  body { font-size: 14px; }
  dl.kv, dl.kv.pairs { grid-template-columns: 1fr; }
}
td.delta.improved { background: #e6f4ea; color: #1e6b34; }
td.delta.regressed { background: var(--err-bg); color: var(--err-line); }
td.delta.unchanged { color: var(--muted); }
figcaption details table.data { font-size: 0.8rem; margin-top: 4px; }
@media print {
  main { max-width: none; padding: 0; }
  body { font-size: 11px; }
  .charts { grid-template-columns: 1fr 1fr; }
  details::details-content { content-visibility: visible; display: block; }
  details > summary { color: var(--fg); }
  .scroll { overflow: visible; }
  tr, figure, .callout { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""
