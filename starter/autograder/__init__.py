"""The course's grader where instructors already grade: `build` writes an autograder for one notebook (`make
autograder NB=03 FORMAT=gradescope|prairielearn`), `gradescope` and `prairielearn` are each platform's files and
results, `platform` grades the one submission a platform hands over with the course's grader, and `isolation`
decides (and says) how its kernel is kept from the answers in the platform's container."""
