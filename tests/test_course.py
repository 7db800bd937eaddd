"""The course table (`cnnviz_widgets.course`) and the lists derived from it agree: the
engine's techniques, the exercises and their notebooks, the checkers and the apps."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnviz_widgets import course

ROOT = Path(__file__).resolve().parents[1]


def test_lessons_are_numbered_in_order_and_each_has_its_notebook():
    numbers = list(course.LESSONS)
    assert numbers == sorted(numbers) and numbers == [f"{i:02d}" for i in range(len(numbers))]
    for number, lesson in course.LESSONS.items():
        assert lesson.number == number and lesson.notebook.startswith(number + "_")
        assert (ROOT / "notebooks" / f"{lesson.notebook}.ipynb").is_file(), lesson.notebook


def test_the_engine_registry_is_the_tables_techniques():
    from cnnviz_widgets.engine import TECHNIQUES

    expected = [(lesson.number + t.part, lesson.notebook, t.name, course.resolve(t.verb),
                 None if t.verb_iter is None else course.resolve(t.verb_iter))
                for lesson in course.LESSONS.values() for t in lesson.techniques]
    assert [(k, t.notebook, t.name, t.verb, t.verb_iter) for k, t in TECHNIQUES.items()] == expected
    assert all(t.verb_iter is not None or t.no_iter for t in TECHNIQUES.values())
    # the engine resolves only engine verbs from the table: it never loads widgets or exercises
    paths = [p for lesson in course.LESSONS.values() for t in lesson.techniques for p in (t.verb, t.verb_iter) if p]
    assert paths and all(p.startswith("cnnviz_widgets.engine.") for p in paths)


def test_the_exercises_and_their_notebooks_are_the_tables():
    from cnnviz_widgets import exercises

    table = [(name, lesson.notebook) for lesson in course.LESSONS.values() for name, _ in lesson.exercises]
    assert list(exercises.LESSONS.items()) == table
    assert exercises.names() == [name for name, _ in table]
    assert all(exercises.lesson_of(name) == notebook for name, notebook in table)


def test_every_exercise_has_the_checker_the_table_names():
    CHECKERS = course.resolve(course.CHECKERS_TABLE)
    named = {name: course.resolve(checker) for lesson in course.LESSONS.values() for name, checker in lesson.exercises}
    assert CHECKERS == named
    assert all(cls.name == exercise for exercise, cls in named.items())


@pytest.mark.widgets
def test_the_apps_are_the_tables():
    from cnnviz_widgets import widgets
    from cnnviz_widgets.widgets.base import App

    table = [lesson.app.partition(":")[2] for lesson in course.LESSONS.values() if lesson.app]
    assert set(table) <= set(widgets.__all__)
    for lesson in course.LESSONS.values():
        if lesson.app:
            cls = getattr(widgets, lesson.app.partition(":")[2])
            assert issubclass(cls, App) and cls is course.resolve(lesson.app)


def test_a_bad_path_is_named():
    with pytest.raises(ValueError, match="package.module:name"):
        course.resolve("cnnviz_widgets.engine")
