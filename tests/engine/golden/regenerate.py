"""Rewrite strategies.json from what the current code parses (run it only on purpose).

    python -m tests.engine.golden.regenerate      # from the repository root

The fixture was first written by the hand-written parser, before the pydantic models
replaced it; the golden test holds the models to that output.
"""

from __future__ import annotations

import json

from training_engine.errors import StrategyConfigError
from training_engine.strategy import strategy_to_dict

from tests.engine.golden.strategy_cases import ERRORS, FIXTURE, PARSED


def main() -> None:
    parsed = {name: strategy_to_dict(case()) for name, case in PARSED.items()}
    errors: dict[str, dict[str, str]] = {}
    for name, case in ERRORS.items():
        try:
            case()
        except StrategyConfigError as exc:
            errors[name] = {"key": exc.key, "problem": exc.problem}
        else:
            raise SystemExit(f"error case {name!r} was accepted")
    FIXTURE.write_text(json.dumps({"parsed": parsed, "errors": errors}, indent=1) + "\n")
    print(f"wrote {FIXTURE}: {len(parsed)} strategies, {len(errors)} errors")


if __name__ == "__main__":
    main()
