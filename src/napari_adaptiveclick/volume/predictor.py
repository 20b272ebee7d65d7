"""One :class:`~napari_adaptiveclick.interactive.session.ClickSession` kept in step with the runs of a
volume annotation (rule 1 of :mod:`napari_adaptiveclick.volume`).

The session holds the prompts of at most one run. A prompt that continues that run is a
single forward pass on its focus crop; any other first rebuilds the session's state: the
run's slice (a view, not copied), its prior mask (its bounding box) and its earlier prompts.
A mask prompt is always the first record of its run, whose prior is that mask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from napari_adaptiveclick.interactive.prompts import Prompt
from napari_adaptiveclick.interactive.transforms import IntensityStats
from napari_adaptiveclick.volume.edits import Run
from napari_adaptiveclick.volume.slicing import SliceGeometry

if TYPE_CHECKING:  # pragma: no cover
    from napari_adaptiveclick.interactive.session import Prediction


class RunPredictor:
    """Predicts the clicks of runs (:class:`~napari_adaptiveclick.volume.edits.Run`) with ``session``.

    ``image``: ``(P, R, C)`` grey or ``(P, R, C, 3)`` RGB, cut into slices by ``geometry``;
    ``stats``: the intensity range (lo, hi) of every slice.
    """

    def __init__(
        self, session, image: np.ndarray, geometry: SliceGeometry, stats: IntensityStats
    ) -> None:
        self.session, self.image, self.geometry, self.stats = session, image, geometry, stats
        self._run: Run | None = None  # the run the session holds, and how many of its clicks
        self._clicks = 0

    def predict(self, run: Run, prompt: Prompt) -> Prediction:
        """The session's prediction (``.crop`` and ``.crop_mask`` in ``.box``; ``.probability``,
        ``.mask``: (rows, cols)) for ``prompt`` (a click, stroke, box, or a mask prompt that
        starts ``run``) after the records of ``run`` (none for a new run), on top of the
        run's prior. Call :meth:`hold` once the prompt is recorded in ``run``."""
        if not self.holds(run):
            self._restart(run)
        self._run, self._clicks = None, 0  # until the result is accepted
        return self.session.add_prompt(prompt)

    def hold(self, run: Run) -> None:
        """The session now holds all records of ``run``."""
        self._run, self._clicks = run, len(run.records)

    def holds(self, run: Run) -> bool:
        """The session holds all records of ``run`` (its prediction is that of the last)."""
        return self._run is run and self._clicks == len(run.records)

    def undo_to(self, last: Run | None) -> None:
        """Undo the session's clicks beyond the records ``last`` (the last run) still has;
        forget its state when it holds another run."""
        if self._run is None or last is not self._run:
            self._run = None
            return
        while self._clicks > len(last.records):
            self.session.undo()
            self._clicks -= 1

    def _restart(self, run: Run) -> None:
        self.session.set_image(self.image[self.geometry.index(run.plane)], stats=self.stats)
        prior = run.prior_crop()
        if prior is not None:
            mask, box = prior
            self.session.set_previous_mask(mask.astype(np.float32), box=box)
        for record in run.records:
            if record.kind == "mask":  # its run's first record: the run's prior is its mask
                self.session.set_mask(mask, box=box)
            else:
                self.session.add_prompt(record.prompt)
