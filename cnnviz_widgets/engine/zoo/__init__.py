"""The networks and the data the kit ships or downloads.

=====================  ==========================================================
`models`               `load_model`, `available_models`, `build_network`, the online check
`data`                 datasets: `load_dataset` (shapes, samples, a folder, Imagenette)
`samples`              the bundled sample photos and their provenance
`textures`             the bundled style and texture images (lesson 14) and their provenance
`shapes`               the synthetic shapes with exact masks (ground truth)
`shapes_net`           the kit's AlexNet-shaped network for the shapes
`train_shapes`         how that network was trained (`python -m ...zoo.train_shapes`)
=====================  ==========================================================

`zoo` imports only `core`.
"""
