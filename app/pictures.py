"""Pictures of image data, drawn with crisp pixels: a heatmap of one value per pixel, a grid of
samples, a community's member pixels as a mask."""

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

SCALE = 16  # screen pixels per image pixel


def pixels(values, shape: tuple[int, int]) -> np.ndarray:
    """`values` (one per input feature, several channels side by side) as a (height, width) image:
    the mean over channels."""
    flat = np.asarray(values, dtype=float)
    return flat.reshape(-1, *shape).mean(axis=0)


def crisp(image: np.ndarray, caption: str, width: int = 160, stretch: bool = True) -> None:
    """One grey image, each pixel a block of screen pixels, never smoothed: stretched from its least
    value (black) to its largest (white), or with `stretch` False drawn as it is (0 black, 1 white: a
    mask of ones is white)."""
    if stretch:
        image = (image - image.min()) / (np.ptp(image) or 1.0)
    st.image(np.kron(image, np.ones((SCALE, SCALE))), caption=caption, width=width, clamp=True)


def grid(images: list[np.ndarray], caption: str, columns: int = 5) -> None:
    """Images tiled in rows of `columns`, one pixel of white between them."""
    height, width = images[0].shape
    rows = -(-len(images) // columns)
    tiled = np.ones((rows * (height + 1) - 1, columns * (width + 1) - 1))
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        span = np.ptp(image) or 1.0
        tiled[r * (height + 1) : r * (height + 1) + height, c * (width + 1) : c * (width + 1) + width] = (
            image - image.min()
        ) / span
    st.image(np.kron(tiled, np.ones((SCALE // 2, SCALE // 2))), caption=caption, width=60 * columns, clamp=True)


def heatmap(image: np.ndarray, legend: str, title: str) -> alt.Chart:
    """A value per pixel as coloured squares with a legend (row 0 on top)."""
    rows, cols = np.indices(image.shape)
    cells = pd.DataFrame({"row": rows.ravel(), "column": cols.ravel(), "value": image.ravel()})
    return (
        alt.Chart(cells, title=title)
        .mark_rect()
        .encode(
            x=alt.X("column:O", axis=None),
            y=alt.Y("row:O", axis=None),
            color=alt.Color("value:Q", title=legend, scale=alt.Scale(scheme="inferno")),
            tooltip=["row", "column", alt.Tooltip("value:Q", format=".4g")],
        )
        .properties(width=180, height=180)
    )
