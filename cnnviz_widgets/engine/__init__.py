"""The PyTorch engine: models, images, datasets and one module per technique.

Pure PyTorch and numpy: nothing here imports ipywidgets or matplotlib, so every
technique can be used (and tested) without a notebook.
"""
