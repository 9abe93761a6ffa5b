"""`python -m starter.grade`: the instructor's grader and a student's self-check (see `starter.grading`)."""

import sys

from starter.grading.cli import main

if __name__ == "__main__":
    sys.exit(main())
