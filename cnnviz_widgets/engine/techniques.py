"""The registry of the course's techniques: one entry per lesson, its verb and its
``_iter`` twin.

`TECHNIQUES` maps a lesson number (``"07"``) to a `Technique`; a lesson with several
techniques has one entry each, lettered (``"13a"`` Grad-CAM, ``"13b"`` Guided Grad-CAM,
``"13c"`` Integrated Gradients). It is what the contract
test (``tests/test_contract.py``) walks: every technique is called in the one dialect
of ``docs/ARCHITECTURE.md`` (the `image` argument, an ``_iter`` twin with
`should_stop` for anything that can take long, numpy integers accepted, a dataclass
result, the model restored after every call, also when it raises), so a new technique
joins the contract by joining this table. It also lets an index page or a test list
the course without importing every module by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .attribution import gradcam, guided, integrated_gradients, occlusion, saliency
from .inspect import activations, dissection, embedding, features, filters, patches
from .optimize import adversarial, ascent, deepdream, inversion

__all__ = ["Technique", "TECHNIQUES", "SUBJECTS"]

#: What a verb takes after the network: an image, a dataset, feature vectors, or nothing.
SUBJECTS = ("image", "dataset", "features", "network")


@dataclass(frozen=True)
class Technique:
    """One lesson's technique.

    lesson: its number (``"07"``); part: a letter where a lesson has several techniques
    (``"a"``), the registry's key being lesson + part; notebook: its notebook's name; name: what it is called;
    verb: the call that computes it; verb_iter: its twin yielding `Progress` (None when
    the technique is one quick step, `no_iter` says why); subject: what the verb takes
    after the network (`SUBJECTS`; ``"features"`` verbs take no network); paper: where
    it comes from.
    """

    lesson: str
    notebook: str
    name: str
    verb: Callable
    verb_iter: Callable | None
    subject: str
    paper: str
    no_iter: str = ""
    part: str = ""

    @property
    def key(self) -> str:
        return self.lesson + self.part


TECHNIQUES: dict[str, Technique] = {t.key: t for t in [
    Technique("01", "01_first_layer_filters", "first-layer filters", filters.first_layer_filters, None, "network",
              "Krizhevsky, Sutskever & Hinton 2012, ImageNet Classification with Deep Convolutional Neural Networks",
              no_iter="reads weights: no forward pass"),
    Technique("02", "02_nearest_neighbors", "nearest neighbours in feature space", features.extract_features,
              features.extract_features_iter, "dataset",
              "Krizhevsky, Sutskever & Hinton 2012 (figure 4)"),
    Technique("03", "03_dimensionality_reduction", "PCA and t-SNE of features", embedding.embed, None, "features",
              "van der Maaten & Hinton 2008, Visualizing Data using t-SNE",
              no_iter="scikit-learn's t-SNE reports no progress; the features scan before it has its own"),
    Technique("04", "04_activations", "activations", activations.activations, None, "image",
              "Yosinski, Clune, Nguyen, Fuchs & Lipson 2015, Understanding Neural Networks Through Deep Visualization",
              no_iter="one forward pass of one image"),
    Technique("05", "05_max_activating_patches", "maximally activating patches", patches.max_activating_patches,
              patches.max_activating_patches_iter, "dataset",
              "Girshick, Donahue, Darrell & Malik 2014, Rich feature hierarchies for accurate object detection"),
    Technique("06", "06_occlusion", "occlusion", occlusion.occlusion, occlusion.occlusion_iter, "image",
              "Zeiler & Fergus 2014, Visualizing and Understanding Convolutional Networks"),
    Technique("07", "07_saliency_maps", "saliency maps", saliency.saliency, saliency.saliency_iter, "image",
              "Simonyan, Vedaldi & Zisserman 2014, Deep Inside Convolutional Networks"),
    Technique("08", "08_guided_backprop", "guided backpropagation", guided.guided_backprop,
              guided.guided_backprop_iter, "image",
              "Springenberg, Dosovitskiy, Brox & Riedmiller 2015, Striving for Simplicity: The All Convolutional Net"),
    Technique("09", "09_gradient_ascent", "gradient ascent", ascent.visualize_class, ascent.visualize_class_iter,
              "image", "Simonyan, Vedaldi & Zisserman 2014; Yosinski et al. 2015; Olah, Mordvintsev & Schubert "
              "2017, Feature Visualization"),
    Technique("10", "10_fooling_images", "fooling images", adversarial.fool, adversarial.fool_iter, "image",
              "Szegedy et al. 2014, Intriguing properties of neural networks; Goodfellow, Shlens & Szegedy 2015; "
              "Madry et al. 2018"),
    Technique("11", "11_deepdream", "DeepDream", deepdream.deepdream, deepdream.deepdream_iter, "image",
              "Mordvintsev, Olah & Tyka 2015, Inceptionism: Going Deeper into Neural Networks"),
    Technique("12", "12_feature_inversion", "feature inversion", inversion.invert_features,
              inversion.invert_features_iter, "image",
              "Mahendran & Vedaldi 2015, Understanding Deep Image Representations by Inverting Them"),
    Technique("13", "13_comparing_attributions", "Grad-CAM", gradcam.grad_cam, gradcam.grad_cam_iter, "image",
              "Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra 2017, Grad-CAM: Visual Explanations from Deep "
              "Networks via Gradient-based Localization", part="a"),
    Technique("13", "13_comparing_attributions", "Guided Grad-CAM", gradcam.guided_grad_cam,
              gradcam.guided_grad_cam_iter, "image", "Selvaraju et al. 2017 (section 3.1)", part="b"),
    Technique("13", "13_comparing_attributions", "Integrated Gradients", integrated_gradients.integrated_gradients,
              integrated_gradients.integrated_gradients_iter, "image",
              "Sundararajan, Taly & Yan 2017, Axiomatic Attribution for Deep Networks", part="c"),
    Technique("15", "15_network_dissection", "network dissection", dissection.dissect, dissection.dissect_iter,
              "dataset", "Bau, Zhou, Khosla, Oliva & Torralba 2017, Network Dissection: Quantifying "
              "Interpretability of Deep Visual Representations (CVPR)"),
]}
