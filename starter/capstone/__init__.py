"""Capstones graded on the weights a student saves: `interface` (what the file must hold), `score`, `reference`."""
