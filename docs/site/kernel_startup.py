"""IPython startup file of the site build's lesson kernels (copied there by build.py).

The site's pages have no kernel behind them, so a widget would be an empty box. Every
widget with a `still_bundle()` method (every cnnviz app) is displayed as that still instead:
its picture, text and settings, captioned as live in Jupyter. Other widgets display as
usual, and the site's tests then flag the lesson. Works with ipywidgets 7 and 8: the
printer is looked up before either version's own display method.
"""


def _register_stills() -> None:
    from IPython import get_ipython
    from IPython.display import display

    shell = get_ipython()
    if shell is None:
        return

    def show(widget) -> None:
        still = getattr(widget, "still_bundle", None)
        if callable(still):
            display(still(), raw=True)
            return
        own = getattr(widget, "_ipython_display_", None)  # ipywidgets 7
        if callable(own):
            own()
        else:  # ipywidgets 8 (a closed widget has no bundle left)
            bundle = widget._repr_mimebundle_ if callable(widget._repr_mimebundle_) else None
            display(bundle() if bundle else {"text/plain": repr(widget)}, raw=True)

    shell.display_formatter.ipython_display_formatter.for_type_by_name(
        "ipywidgets.widgets.widget", "Widget", show)


_register_stills()
del _register_stills
