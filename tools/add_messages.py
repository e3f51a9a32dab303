"""Add catalogue keys to review_ui/locales/{en,zh-CN}.json in one step (both or neither).

    python tools/add_messages.py key "English" "中文" [key "English" "中文" ...]

Existing keys are replaced; the files keep their key order with new keys at the end.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FOLDER = Path(__file__).resolve().parent.parent / "review_ui" / "locales"


def main(args: list[str]) -> int:
    if not args or len(args) % 3:
        sys.stderr.write(__doc__ or "")
        return 2
    triples = [args[i : i + 3] for i in range(0, len(args), 3)]
    for locale, column in (("en", 1), ("zh-CN", 2)):
        path = FOLDER / f"{locale}.json"
        messages = json.loads(path.read_text(encoding="utf-8"))
        for triple in triples:
            messages[triple[0]] = triple[column]
        path.write_text(json.dumps(messages, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
