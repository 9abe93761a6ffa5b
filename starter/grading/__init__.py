"""The instructor's grader, step by step: `submissions` finds and names what students handed in, `plan` turns a
submission into the cells to run and the checks to make, `withheld` builds the `starter` package a grading kernel
gets, `sandbox` confines that kernel (`kernel_user` where no sandbox can be made), `budget` gives it (and its
worker) a cgroup of its own, `kernel` talks to it, `worker` grades one submission (the checks run there, in the
grader's process), `reports` writes grades.csv, feedback and summary.md as results come in, and `cli` is
`python -m starter.grade`; `scratch` removes the scratch folders, whatever they hold."""
