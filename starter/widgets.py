"""Interactive explorers for notebook 04 (ipywidgets 7 or 8), with a static fallback for headless runs.

Set COURSE_STATIC=1 (the headless runner and `make test` do) to get plain figures instead of widgets, and
COURSE_STATIC=0 to keep live widgets in fast mode (the browser test does).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import torch

from starter.config import FAST, STATIC_ENV
from starter.models.sampling import sample
from starter.plot import draw_code_grid, draw_images

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def is_static() -> bool:
    """True when no one is there to move a slider: headless runs, CI, fast mode (unless COURSE_STATIC=0)."""
    setting = os.environ.get(STATIC_ENV, "").strip()
    return setting == "1" if setting else FAST


def _grid_and_digit(vqvae: torch.nn.Module, codes: torch.Tensor, marked: tuple[int, int] | None = None) -> Figure:
    """The code grid and the digit it decodes to. Built outside pyplot's state, so that nothing else (JupyterLab runs
    widget callbacks beside cell executions, and each one closes every pyplot figure) can draw or close it midway."""
    from matplotlib.figure import Figure  # imported when drawn (`starter.plot.pyplot`)

    figure = Figure(figsize=(6, 3))
    left, right = figure.subplots(1, 2)
    draw_code_grid(left, codes, vqvae.quantizer.num_codes, marked=marked)
    right.imshow(vqvae.decode(codes[None].to(next(vqvae.parameters()).device))[0, 0].cpu(), cmap="gray", vmin=0, vmax=1)
    right.axis("off")
    left.set_title("codes")
    right.set_title("decoded")
    figure.tight_layout()
    return figure


def code_grid_editor(vqvae: torch.nn.Module, codes: torch.Tensor):
    """Pick a position and a code and watch the decoded digit change. Returns a widget (or a figure when static)."""
    codes = codes.clone().cpu()
    if is_static():
        edited = codes.clone()
        edited[3, 3] = (int(edited[3, 3]) + 1) % vqvae.quantizer.num_codes
        return _grid_and_digit(vqvae, edited, marked=(3, 3))
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
            display(_grid_and_digit(vqvae, codes, marked=(row.value, column.value)))

    def select(change) -> None:
        """A new position: show its code on the slider (whose change redraws), or redraw if it already shows it."""
        current = int(codes[row.value, column.value])
        if code.value != current:
            code.value = current
        else:
            redraw()

    row.observe(select, names="value")
    column.observe(select, names="value")
    code.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([row, column, code]), output])


def temperature_explorer(prior: torch.nn.Module, vqvae: torch.nn.Module, count: int = 16, temperature: float = 1.0):
    """A temperature slider and a resample button over decoded prior samples (a figure when static)."""

    def draw(value: float) -> Figure:
        from matplotlib.figure import Figure

        images = vqvae.decode(sample(prior, count, value))
        return draw_images(Figure(), images, nrow=8, title=f"temperature {value:.2f}")

    if is_static():
        return draw(temperature)
    import ipywidgets as widgets
    from IPython.display import clear_output, display

    slider = widgets.FloatSlider(temperature, min=0.3, max=2.0, step=0.05, description="temperature")
    button = widgets.Button(description="resample")
    output = widgets.Output()

    def redraw(_=None) -> None:
        with output:
            clear_output(wait=True)
            display(draw(slider.value))

    slider.observe(redraw, names="value")
    button.on_click(redraw)
    redraw()
    return widgets.VBox([widgets.HBox([slider, button]), output])
