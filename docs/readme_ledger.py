"""README's three ledger rows and totals, copied from the ledger `regbench claims run` wrote
(docs/decks.json) between README's markers; docs/regenerate.sh runs it after the claims part.

    python docs/readme_ledger.py docs/decks.json README.md CLAIM CLAIM CLAIM
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BEGIN = "<!-- ledger rows: copied from docs/decks.json by docs/readme_ledger.py; do not edit -->"
END = "<!-- /ledger rows -->"
HEAD = (
    "| claim | deck's sentence | verdict | Δ [interval] (stats' verdict) | seeds/arm | runs (fixed) |\n"
    "| --- | --- | --- | --- | --- | --- |"
)


def block(doc: dict, names: list[str]) -> str:
    rows = {r["claim"]: r for r in doc["claims"]}
    lines = [
        f"| **{n}**: {r['english']} | «{r['sentence']}» | **{r['verdict']}** | {r['effect']} | "
        f"{r['seeds']} | {r['runs']} ({r['fixed_runs']}) |"
        for n in names
        if (r := rows[n])
    ]
    return "\n".join([BEGIN, HEAD, *lines, "", f"The whole ledger: {doc['totals']}", END])


def main(ledger: str, readme: str, *names: str) -> None:
    doc, path = json.loads(Path(ledger).read_text()), Path(readme)
    text = path.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    path.write_text(text[:start] + block(doc, list(names)) + text[end:])


if __name__ == "__main__":
    main(*sys.argv[1:])
