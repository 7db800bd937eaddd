# nbgrader configuration for the cnnviz-widgets course (nbgrader 0.9), the one
# tests/test_nbgrader.py grades with. Copy it into your course folder (next to source/)
# and add your course id; see docs/INSTRUCTORS.md, "With nbgrader".
c = get_config()  # noqa: F821 (nbgrader's config loader defines get_config)

# Autograde runs every cell of a lesson. nbgrader's default of 30 s per cell is too short
# on a 2-core machine: in full mode the optimisation lessons (09-12) have cells of 20-40 s
# there, and a cell cut off leaves the names it defines undefined, so the check after it
# fails with a NameError. 600 s per cell is far above any lesson's whole run (60 s in full
# mode, measured by benchmarks/bench_lessons.py); the kernel may take a while to start when
# several notebooks are graded at once.
c.Execute.timeout = 600
c.Execute.startup_timeout = 120

# The exercise stubs are nbgrader's own (ClearSolutions' default), so generate_assignment
# turns the kit's solution versions into exactly the stored notebooks.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
