"""Lesson 02's exercise, `nearest_neighbors`: the inputs it is tried on and the mistakes its checker names."""

from __future__ import annotations

import torch

from ...engine.inspect.neighbors import nearest_neighbors as engine_nearest_neighbors
from ..checker import Case, Mistake
from ..fixtures import shapes_net, shapes_items, shape_image, seeded
from ..kinds import IndexChecker

__all__ = ["NearestNeighborsChecker"]


def _cosine(features, query):
    return (features @ query) / (features.norm(dim=1) * query.norm())


class NearestNeighborsChecker(IndexChecker):
    name = "nearest_neighbors"
    models = ("shapes",)
    arg_names = ("features", "query", "k")
    what = "indices"
    mistakes = (
        Mistake("farthest", "the farthest rows, not the nearest",
                "You returned the rows with the *lowest* cosine similarity. Similarity is high for neighbours: "
                "sort it in descending order (or, with distances 1 - similarity, ascending).",
                lambda c: _cosine(c.args[0], c.args[1]).argsort()[: c.args[2]]),
        Mistake("nearest_last", "the right neighbours, nearest last",
                "You found the k nearest rows but listed them from the k-th nearest to the nearest. Put the "
                "nearest first.",
                lambda c: _cosine(c.args[0], c.args[1]).argsort()[-c.args[2]:]),
        Mistake("l2", "Euclidean distance instead of cosine similarity",
                "You ranked the rows by Euclidean (L2) distance. Cosine similarity compares directions only: "
                "a row twice as long points the same way and is just as similar. Divide the dot product by "
                "both norms.",
                lambda c: (c.args[0] - c.args[1]).norm(dim=1).argsort()[: c.args[2]]),
        Mistake("dot", "dot product without normalising",
                "You ranked the rows by their dot product with the query, without dividing by the rows' "
                "norms: long rows win whatever their direction. Cosine similarity is "
                "f . q / (|f| |q|).",
                lambda c: (c.args[0] @ c.args[1]).argsort(descending=True)[: c.args[2]]),
    )

    def build_cases(self):
        net = shapes_net()
        items, _ = shapes_items()
        with torch.no_grad():
            fc7 = torch.cat([net.forward_to(shape_image(i, net.device)[0], "fc7").flatten(1) for i in range(20)]).cpu()
        g = seeded(202)
        directions = torch.randn(30, 8, generator=g)
        lengths = torch.exp(torch.randn(30, 1, generator=g) * 1.5)
        wide = torch.randn(12, 130, generator=g)
        cases = [
            Case("fc7 features of 19 shapes (19 x 256), query: the features of a 20th, k = 5",
                 (fc7[:19], fc7[19], 5)),
            Case("30 random rows of very different lengths (30 x 8), k = 4",
                 (directions * lengths, torch.randn(8, generator=g) * 3, 4)),
            Case("7 random rows (7 x 3), k = 7 (all of them)", (torch.randn(7, 3, generator=g), torch.randn(3, generator=g), 7)),
            Case("12 random rows of 130 numbers, k = 1", (wide, torch.randn(130, generator=g), 1)),
        ]
        for c in cases:
            features, query, k = c.args
            c.expected = [int(i) for i in engine_nearest_neighbors(features, query, k=k, metric="cosine")[0]]
        return cases

    def scores(self, case):
        return _cosine(case.args[0].double(), case.args[1].double())
