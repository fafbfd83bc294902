"""Write the API's OpenAPI document, built from the app object (no server, no database).

    python scripts/dump_openapi.py [PATH]   (default: stdout)

Keys are sorted and the output ends with a newline, so the same app gives the same bytes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def spec_json() -> str:
    from app.main import create_app

    return json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> None:
    text = spec_json()
    if argv:
        Path(argv[0]).write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main(sys.argv[1:])
