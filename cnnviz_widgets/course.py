"""The course in one table: each lesson's notebook, techniques (verbs), app, exercise and checker.

`LESSONS` maps a lesson number (``"07"``) to a `Lesson`. Everything else that lists
the course is derived from it: the engine's technique registry (`engine.TECHNIQUES`,
one `Technique` per entry of `Lesson.techniques`), the exercises and the notebooks
that ask for them (`exercises.LESSONS`), the checkers (`exercises.lessons.CHECKERS`, one
per exercise, the classes `Lesson.exercises` names) and the apps (`widgets`' lazy
imports); `tests/test_course.py` checks that they agree.

This module imports nothing of the kit: it names verbs, apps and checkers by import
path (``"package.module:name"``), so the engine can read it without importing widgets
or exercises, and `resolve` loads one when it is wanted. A new lesson is a new row.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TechniqueEntry", "Lesson", "LESSONS", "CHECKERS_TABLE", "resolve", "apps", "exercises",
           "lesson_of_exercise"]

_ENGINE = "cnnviz_widgets.engine."
_WIDGETS = "cnnviz_widgets.widgets."
# Where the checkers live: the class of exercise `e` named `N` is at `_checker(e, N)`,
# and the table of them (exercise -> class) at `CHECKERS_TABLE`.
CHECKERS_TABLE = "cnnviz_widgets.exercises.lessons:CHECKERS"


def _checker(exercise: str, name: str) -> str:
    return f"cnnviz_widgets.exercises.lessons.{exercise}:{name}Checker"


@dataclass(frozen=True)
class TechniqueEntry:
    """One technique of a lesson, as `engine.techniques.Technique` holds it once resolved.

    name: what it is called; verb, verb_iter: import paths of the call and of its
    ``_iter`` twin (None when the technique is one quick step; `no_iter` says why);
    subject: what the verb takes after the network (``"image"``, ``"dataset"``,
    ``"features"``, ``"network"``); paper: where it comes from; part: a letter where a
    lesson has several techniques (the registry's key is lesson + part).
    """

    name: str
    verb: str
    verb_iter: str | None
    subject: str
    paper: str
    no_iter: str = ""
    part: str = ""


@dataclass(frozen=True)
class Lesson:
    """One lesson: its number (``"07"``), notebook (without ``.ipynb``), techniques, app
    (the import path of its `App` class, None where it has none) and exercises: one
    ``(name, checker)`` pair per exercise of its "Your turn", the name `exercises.check`
    takes and the import path of that exercise's checker class (a lesson may ask for
    several, as 14 does)."""

    number: str
    notebook: str
    techniques: tuple[TechniqueEntry, ...] = field(default=())
    app: str | None = None
    exercises: tuple[tuple[str, str], ...] = ()


def _t(name: str, verb: str, verb_iter: str | None, subject: str, paper: str, **kw) -> TechniqueEntry:
    return TechniqueEntry(name, _ENGINE + verb, None if verb_iter is None else _ENGINE + verb_iter, subject, paper,
                          **kw)


LESSONS: dict[str, Lesson] = {lesson.number: lesson for lesson in [
    Lesson("00", "00_start_here", app=_WIDGETS + "start:HelloApp"),
    Lesson("01", "01_first_layer_filters", (
        _t("first-layer filters", "inspect.filters:first_layer_filters", None, "network",
           "Krizhevsky, Sutskever & Hinton 2012, ImageNet Classification with Deep Convolutional Neural Networks",
           no_iter="reads weights: no forward pass"),),
        _WIDGETS + "filters:FiltersApp", (("filter_tiles", _checker("filter_tiles", "FilterTiles")),)),
    Lesson("02", "02_nearest_neighbors", (
        _t("nearest neighbours in feature space", "inspect.features:extract_features",
           "inspect.features:extract_features_iter", "dataset", "Krizhevsky, Sutskever & Hinton 2012 (figure 4)"),),
        _WIDGETS + "neighbors:NeighborsApp", (("nearest_neighbors", _checker("nearest_neighbors", "NearestNeighbors")),)),
    Lesson("03", "03_dimensionality_reduction", (
        _t("PCA and t-SNE of features", "inspect.embedding:embed", None, "features",
           "van der Maaten & Hinton 2008, Visualizing Data using t-SNE",
           no_iter="scikit-learn's t-SNE reports no progress; the features scan before it has its own"),),
        _WIDGETS + "embedding:EmbeddingApp", (("pca_2d", _checker("pca_2d", "Pca2d")),)),
    Lesson("04", "04_activations", (
        _t("activations", "inspect.activations:activations", None, "image",
           "Yosinski, Clune, Nguyen, Fuchs & Lipson 2015, Understanding Neural Networks Through Deep Visualization",
           no_iter="one forward pass of one image"),),
        _WIDGETS + "activations:ActivationsApp", (("top_channels", _checker("top_channels", "TopChannels")),)),
    Lesson("05", "05_max_activating_patches", (
        _t("maximally activating patches", "inspect.patches:max_activating_patches",
           "inspect.patches:max_activating_patches_iter", "dataset",
           "Girshick, Donahue, Darrell & Malik 2014, Rich feature hierarchies for accurate object detection"),),
        _WIDGETS + "patches:PatchesApp", (("receptive_field", _checker("receptive_field", "ReceptiveField")),)),
    Lesson("06", "06_occlusion", (
        _t("occlusion", "attribution.occlusion:occlusion", "attribution.occlusion:occlusion_iter", "image",
           "Zeiler & Fergus 2014, Visualizing and Understanding Convolutional Networks"),),
        _WIDGETS + "occlusion:OcclusionApp", (("occlusion_map", _checker("occlusion_map", "OcclusionMap")),)),
    Lesson("07", "07_saliency_maps", (
        _t("saliency maps", "attribution.saliency:saliency", "attribution.saliency:saliency_iter", "image",
           "Simonyan, Vedaldi & Zisserman 2014, Deep Inside Convolutional Networks"),),
        _WIDGETS + "saliency:SaliencyApp", (("saliency", _checker("saliency", "Saliency")),)),
    Lesson("08", "08_guided_backprop", (
        _t("guided backpropagation", "attribution.guided:guided_backprop", "attribution.guided:guided_backprop_iter",
           "image", "Springenberg, Dosovitskiy, Brox & Riedmiller 2015, Striving for Simplicity: The All "
           "Convolutional Net"),),
        _WIDGETS + "guided:GuidedBackpropApp", (("guided_relu_backward", _checker("guided_relu_backward", "GuidedReluBackward")),)),
    Lesson("09", "09_gradient_ascent", (
        _t("gradient ascent", "optimize.ascent:visualize_class", "optimize.ascent:visualize_class_iter", "image",
           "Simonyan, Vedaldi & Zisserman 2014; Yosinski et al. 2015; Olah, Mordvintsev & Schubert 2017, "
           "Feature Visualization"),),
        _WIDGETS + "ascent:AscentApp", (("ascent_step", _checker("ascent_step", "AscentStep")),)),
    Lesson("10", "10_fooling_images", (
        _t("fooling images", "optimize.adversarial:fool", "optimize.adversarial:fool_iter", "image",
           "Szegedy et al. 2014, Intriguing properties of neural networks; Goodfellow, Shlens & Szegedy 2015; "
           "Madry et al. 2018"),),
        _WIDGETS + "adversarial:FoolingApp", (("pgd_step", _checker("pgd_step", "PgdStep")),)),
    Lesson("11", "11_deepdream", (
        _t("DeepDream", "optimize.deepdream:deepdream", "optimize.deepdream:deepdream_iter", "image",
           "Mordvintsev, Olah & Tyka 2015, Inceptionism: Going Deeper into Neural Networks"),),
        _WIDGETS + "deepdream:DeepDreamApp", (("guided_dream_step", _checker("guided_dream_step", "GuidedDreamStep")),)),
    Lesson("12", "12_feature_inversion", (
        _t("feature inversion", "optimize.inversion:invert_features", "optimize.inversion:invert_features_iter",
           "image", "Mahendran & Vedaldi 2015, Understanding Deep Image Representations by Inverting Them"),),
        _WIDGETS + "inversion:InversionApp", (("total_variation", _checker("total_variation", "TotalVariation")),)),
    Lesson("13", "13_comparing_attributions", (
        _t("Grad-CAM", "attribution.gradcam:grad_cam", "attribution.gradcam:grad_cam_iter", "image",
           "Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra 2017, Grad-CAM: Visual Explanations from Deep "
           "Networks via Gradient-based Localization", part="a"),
        _t("Guided Grad-CAM", "attribution.gradcam:guided_grad_cam", "attribution.gradcam:guided_grad_cam_iter",
           "image", "Selvaraju et al. 2017 (section 3.1)", part="b"),
        _t("Integrated Gradients", "attribution.integrated_gradients:integrated_gradients",
           "attribution.integrated_gradients:integrated_gradients_iter", "image",
           "Sundararajan, Taly & Yan 2017, Axiomatic Attribution for Deep Networks", part="c")),
        _WIDGETS + "compare:CompareApp", (("deletion_curve", _checker("deletion_curve", "DeletionCurve")),)),
    Lesson("14", "14_style_transfer", (
        _t("texture synthesis", "optimize.style:synthesize_texture", "optimize.style:synthesize_texture_iter",
           "style_image", "Gatys, Ecker & Bethge 2015, Texture Synthesis Using Convolutional Neural Networks",
           part="a"),
        _t("style transfer", "optimize.style:transfer_style", "optimize.style:transfer_style_iter",
           "content_image", "Gatys, Ecker & Bethge 2016, Image Style Transfer Using Convolutional Neural Networks",
           part="b")),
        _WIDGETS + "style:StyleApp", (("gram_matrix", _checker("gram_matrix", "GramMatrix")),
                                      ("style_loss", _checker("style_loss", "StyleLoss")))),
    Lesson("15", "15_network_dissection", (
        _t("network dissection", "inspect.dissection:dissect", "inspect.dissection:dissect_iter", "dataset",
           "Bau, Zhou, Khosla, Oliva & Torralba 2017, Network Dissection: Quantifying Interpretability of Deep "
           "Visual Representations (CVPR)"),),
        _WIDGETS + "dissection:DissectionApp", (("unit_iou", _checker("unit_iou", "UnitIou")),)),
]}


def resolve(path: str) -> Any:
    """``"package.module:name"`` -> the object (imports the module)."""
    module, _, name = path.partition(":")
    if not name:
        raise ValueError(f"an import path is 'package.module:name', not {path!r}")
    return getattr(importlib.import_module(module), name)


def apps() -> dict[str, str]:
    """App class name -> the module that defines it, lesson by lesson (nothing imported)."""
    return {lesson.app.partition(":")[2]: lesson.app.partition(":")[0] for lesson in LESSONS.values() if lesson.app}


def exercises() -> dict[str, str]:
    """Exercise name -> the notebook that asks for it, lesson by lesson."""
    return {name: lesson.notebook for lesson in LESSONS.values() for name, _ in lesson.exercises}


def lesson_of_exercise(name: str) -> Lesson:
    """The lesson whose "Your turn" section asks for exercise `name` (KeyError if none)."""
    for lesson in LESSONS.values():
        if any(exercise == name for exercise, _ in lesson.exercises):
            return lesson
    raise KeyError(name)
