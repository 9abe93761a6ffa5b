"""Print how many wrong answers each check cell is tested against: `python bench/wrong_answers.py`.

The wrong answers live in tests/wrong_answers.py; tests/test_wrong_answers.py runs each through its check (`make test`).
"""

from __future__ import annotations

import sys

from starter.config import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "tests"))
from wrong_answers import VISIBLE_ONLY, WRONG_ANSWERS  # noqa: E402


def main() -> None:
    width = max(map(len, WRONG_ANSWERS))
    print(f"{'exercise':<{width}}  {'wrong answers':>13}  {'hidden-test only':>16}")
    for grade_id, answers in WRONG_ANSWERS.items():
        print(f"{grade_id:<{width}}  {len(answers):>13}  {len(VISIBLE_ONLY.get(grade_id, [])):>16}")
    total = sum(map(len, WRONG_ANSWERS.values()))
    print(f"{'total':<{width}}  {total:>13}  {sum(map(len, VISIBLE_ONLY.values())):>16}")


if __name__ == "__main__":
    main()
