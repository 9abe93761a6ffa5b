"""Everything that runs in a student's kernel for the checks, shipped there whole: the request server (`serve`), the
wire format (`wire`), general probes of an object (`general`), the stand-in model whose every answer a check sets
(`stand_in`), and one file of fixtures per notebook that needs some.

Nothing here decides a grade, and nothing here answers an exercise (`tests/test_twins.py` tries every object here
against every check). A check calls a probe by the object itself (`Kernel.run(general.parameters, module)`); the
kernel finds it by its module and name, and only under this package.
"""
