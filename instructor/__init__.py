"""For instructors, not installed with the package: the model solutions of the exercises
(`solutions`) and the nbgrader configuration the kit is tested with (`nbgrader_config.py`).
See docs/INSTRUCTORS.md."""
