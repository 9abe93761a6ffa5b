"""`python -m starter.autograder.build 03 --format gradescope --out dist` (`make autograder NB=03 FORMAT=gradescope
OUT=dist`): notebook 03's autograder, which grades with the course's grader, for Gradescope (a zip to upload) or
PrairieLearn (a question, and the image that grades it)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from starter.autograder import gradescope, prairielearn
from starter.autograder.bundle import build_wheel, make_bundle
from starter.autograder.platform import parser as entry_parser
from starter.config import PROJECT_ROOT

FORMATS = ("gradescope", "prairielearn")
IMAGE = "discrete-latents/grader"  # PrairieLearn's image: push yours to Docker Hub and name it with --image


def build(
    notebook: str, platform: str, out: Path, wheel: Path, options: tuple[str, ...] = (), image: str = IMAGE
) -> Path:
    """Write notebook "NN"'s autograder for `platform` under `out`, with the course's `wheel` and the entry point's
    `options`; returns the zip (Gradescope) or the question's folder (PrairieLearn)."""
    bundle = make_bundle(notebook, PROJECT_ROOT / "solutions", wheel, options)
    if platform == "gradescope":
        return gradescope.package(bundle, out)
    return prairielearn.question(bundle, out, image)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m starter.autograder.build", description=__doc__.splitlines()[0])
    parser.add_argument("notebook", help="the notebook's number, e.g. 03")
    parser.add_argument("--format", required=True, choices=FORMATS, help="the platform")
    parser.add_argument("--out", type=Path, default=Path("dist"), help="where gradescope/ or prairielearn/ goes")
    parser.add_argument("--wheel", type=Path, help="the course's wheel (default: built from this checkout)")
    parser.add_argument("--image", default=IMAGE, help="PrairieLearn: the grading image's name on Docker Hub")
    defaults = entry_parser("").parse_args([])
    parser.add_argument("--timeout", type=int, default=defaults.timeout, help="seconds for a notebook")
    parser.add_argument("--memory-mb", type=int, default=defaults.memory_mb, help="memory of a kernel")
    args = parser.parse_args(argv)
    if args.format == "prairielearn" and args.timeout > prairielearn.TIMEOUT - 60:
        limit = prairielearn.TIMEOUT - 60
        parser.error(f"PrairieLearn stops a grading job after {prairielearn.TIMEOUT} s: --timeout at most {limit}")
    options = ("--timeout", str(args.timeout), "--memory-mb", str(args.memory_mb))
    with tempfile.TemporaryDirectory(prefix="wheel-") as dist:
        wheel = args.wheel or build_wheel(PROJECT_ROOT, Path(dist))
        path = build(args.notebook, args.format, args.out, wheel, options, args.image)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
