"""The matplotlib set-up that every figure shares (:mod:`pyro_gmvae.plots`, :mod:`pyro_gmvae.curves`): the Agg
backend (no display needed), a categorical palette, integer ticks for counts, legends beside the axes."""


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


#: Categorical colours, most distinct first: tab10, then the light halves of tab20 (tab20's odd entries).
def palette(n):
    """``n`` RGBA colours for categories: tab10's ten, then tab20's ten lighter tints, then evenly spaced hues
    (adjacent indices never share a hue family among the first ten).

    >>> len(palette(12)), len(set(palette(20)))
    (12, 20)
    """
    plt = _pyplot()
    base = [plt.get_cmap("tab10")(i) for i in range(10)] + [plt.get_cmap("tab20")(2 * i + 1) for i in range(10)]
    if n <= len(base):
        return base[:n]
    import colorsys

    extra = [(*colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.65, 0.85), 1.0) for i in range(n - len(base))]
    return base + extra


def _colour(i, n=20):
    """The colour of category ``i`` of ``n``."""
    return palette(max(n, int(i) + 1))[int(i)]


def _integer_ticks(axis):
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _legend_beside(ax, **kwargs):
    """The legend to the right of the axes, off the data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize="small", **kwargs)
