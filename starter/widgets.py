"""Interactive explorers for notebook 04 (ipywidgets 7 or 8), with a static fallback for headless runs.

Set COURSE_STATIC=1 (the headless runner and `make test` do) to get plain figures instead of widgets.
"""
from __future__ import annotations

import os

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from starter.config import FAST
from starter.plot import show_images

STATIC_ENV = "COURSE_STATIC"


def is_static() -> bool:
    """True when no one is there to move a slider: headless runs, CI, fast mode."""
    return FAST or os.environ.get(STATIC_ENV, "0") == "1"


def _static(figure: Figure) -> Figure:
    """Close the figure so that Jupyter shows it once, as the cell's value, not a second time as an open plot."""
    plt.close(figure)
    return figure


def _grid_and_digit(vqvae: torch.nn.Module, codes: torch.Tensor, marked: tuple[int, int] | None = None) -> Figure:
    figure, (left, right) = plt.subplots(1, 2, figsize=(6, 3))
    left.imshow(codes.cpu(), cmap="tab20", vmin=0, vmax=vqvae.quantizer.num_codes - 1)
    for (i, j), value in zip(torch.cartesian_prod(torch.arange(7), torch.arange(7)).tolist(), codes.flatten().tolist()):
        left.text(j, i, str(value), ha="center", va="center", fontsize=7,
                  fontweight="bold" if marked == (i, j) else "normal")
    if marked:
        left.add_patch(plt.Rectangle((marked[1] - 0.5, marked[0] - 0.5), 1, 1, fill=False, color="red", linewidth=2))
    right.imshow(vqvae.decode(codes[None].to(next(vqvae.parameters()).device))[0, 0].cpu(), cmap="gray", vmin=0, vmax=1)
    for axis, title in [(left, "codes"), (right, "decoded")]:
        axis.set_title(title)
        axis.axis("off")
    figure.tight_layout()
    return figure


def code_grid_editor(vqvae: torch.nn.Module, codes: torch.Tensor):
    """Pick a position and a code and watch the decoded digit change. Returns a widget (or a figure when static)."""
    codes = codes.clone().cpu()
    if is_static():
        edited = codes.clone()
        edited[3, 3] = (int(edited[3, 3]) + 1) % vqvae.quantizer.num_codes
        return _static(_grid_and_digit(vqvae, edited, marked=(3, 3)))
    import ipywidgets as widgets
    from IPython.display import clear_output, display

    row, column = widgets.IntSlider(3, 0, 6, description="row"), widgets.IntSlider(3, 0, 6, description="column")
    code = widgets.IntSlider(int(codes[3, 3]), 0, vqvae.quantizer.num_codes - 1, description="code")
    output = widgets.Output()

    def redraw(change=None) -> None:
        if change is not None and change.get("owner") is code:
            codes[row.value, column.value] = code.value
        with output:
            clear_output(wait=True)
            figure = _grid_and_digit(vqvae, codes, marked=(row.value, column.value))
            display(figure)
            plt.close(figure)

    def select(change) -> None:
        code.value = int(codes[row.value, column.value])
        redraw()

    row.observe(select, names="value")
    column.observe(select, names="value")
    code.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([row, column, code]), output])


def temperature_explorer(prior: torch.nn.Module, vqvae: torch.nn.Module, count: int = 16, temperature: float = 1.0):
    """A temperature slider and a resample button over decoded prior samples (a figure when static)."""
    def draw(value: float) -> Figure:
        return show_images(vqvae.decode(prior.generate(count, value)), nrow=8, title=f"temperature {value:.2f}")

    if is_static():
        return _static(draw(temperature))
    import ipywidgets as widgets
    from IPython.display import clear_output, display

    slider = widgets.FloatSlider(temperature, min=0.3, max=2.0, step=0.05, description="temperature")
    button = widgets.Button(description="resample")
    output = widgets.Output()

    def redraw(_=None) -> None:
        with output:
            clear_output(wait=True)
            figure = draw(slider.value)
            display(figure)
            plt.close(figure)

    slider.observe(redraw, names="value")
    button.on_click(redraw)
    redraw()
    return widgets.VBox([widgets.HBox([slider, button]), output])
