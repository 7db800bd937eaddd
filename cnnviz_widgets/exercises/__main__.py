"""``python -m cnnviz_widgets.exercises``: solution and student versions of the lessons.

    python -m cnnviz_widgets.exercises solution notebooks/ solved/   # the answers filled in
    python -m cnnviz_widgets.exercises student solved/ handout/      # the answers cleared again
    python -m cnnviz_widgets.exercises list                          # the exercises and their lessons

The solution version marks each answer with nbgrader's ``### BEGIN SOLUTION`` /
``### END SOLUTION``, so nbgrader's ``generate_assignment`` also makes the student
version from it. The answers come from the repository's ``instructor/solutions.py`` (not
installed with the package): run it from a clone, or pass ``--solutions PATH``. See
docs/INSTRUCTORS.md.
"""

from __future__ import annotations

import argparse
import sys

from . import lesson_of, names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnviz_widgets.exercises",
                                     description="Solution and student versions of the lesson notebooks.")
    sub = parser.add_subparsers(dest="command", required=True)
    for version, text in (("solution", "fill every exercise with its model solution (nbgrader markers)"),
                          ("student", "clear every marked solution region (what nbgrader's generate_assignment does)")):
        p = sub.add_parser(version, help=text)
        p.add_argument("sources", nargs="+", help="notebooks, or folders of NN_*.ipynb")
        p.add_argument("out_dir", help="folder to write the notebooks into (created if missing)")
        if version == "solution":
            p.add_argument("--solutions", help="the model solutions' file (default: instructor/solutions.py of the "
                           "repository, which a learner's install does not carry)")
    sub.add_parser("list", help="the exercises, in lesson order")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name in names():
            print(f"{lesson_of(name)}: {name}")
        return 0
    from .notebooks import write_versions

    try:
        paths = write_versions(args.sources, args.out_dir, args.command, getattr(args, "solutions", None))
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote the {args.command} version of {len(paths)} notebook(s) to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
