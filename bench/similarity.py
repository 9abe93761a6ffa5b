"""The similarity report measured: `python bench/similarity.py`. Prints, per notebook, the share in common of each
kind of planted copy with its original (found: at or above the reporting thresholds), the closest pair among
independently written correct answers (tests/correct_answers.py) and how many pairs of them would be listed, and
the time to fingerprint and compare 200 submissions of notebook 01."""

from __future__ import annotations

import itertools
import random
import sys
import time

from starter.config import PROJECT_ROOT
from starter.grading.similarity import MINIMUM, THRESHOLD, compare, similar_pairs

sys.path.insert(0, str(PROJECT_ROOT / "tests"))
from corpus import solution_sources  # noqa: E402
from correct_answers import CORRECT_ANSWERS  # noqa: E402
from test_similarity import NOTEBOOKS, PLANTS, prints_of, renamed  # noqa: E402


def main() -> None:
    print(f"reported: share in common >= {THRESHOLD:.0%} and >= {MINIMUM} windows in common\n")
    print(
        f"{'notebook':<9}"
        + "".join(f"{plant:>13}" for plant in PLANTS)
        + f"{'answer sets':>13}{'closest':>9}{'listed':>8}"
    )
    for notebook in NOTEBOOKS:
        ids = list(solution_sources(notebook))
        original = {g: CORRECT_ANSWERS[g][0].source for g in ids}
        cells = []
        for plant in PLANTS.values():
            score, shared, _ = compare(
                prints_of(notebook, original), prints_of(notebook, {g: plant(s) for g, s in original.items()})
            )
            cells.append(f"{score:.0%} {'found' if score >= THRESHOLD and shared >= MINIMUM else 'MISSED'}")
        count = min(len(CORRECT_ANSWERS[g]) for g in ids)
        prints = [prints_of(notebook, {g: CORRECT_ANSWERS[g][k].source for g in ids}) for k in range(count)]
        closest = max(compare(a, b)[0] for a, b in itertools.combinations(prints, 2))
        listed = len(similar_pairs(dict(enumerate(prints)), {}))
        print(f"{notebook:<9}" + "".join(f"{cell:>13}" for cell in cells) + f"{count:>13}{closest:>9.0%}{listed:>8}")
    random.seed(0)
    ids = list(solution_sources("01"))
    sources = [{g: renamed(random.choice(CORRECT_ANSWERS[g]).source) for g in ids} for _ in range(200)]
    start = time.perf_counter()
    prints = {f"student {i}": prints_of("01", answers) for i, answers in enumerate(sources)}
    fingerprinted = time.perf_counter()
    similar_pairs(prints, {})
    done = time.perf_counter()
    print(
        f"\n200 submissions of notebook 01: fingerprints {fingerprinted - start:.1f} s, "
        f"{200 * 199 // 2} pairs compared {done - fingerprinted:.1f} s"
    )


if __name__ == "__main__":
    main()
