"""The synthetic case every propagation stop rule must stop: a "model" that copies the previous
slice's mask wherever it is asked, past the object's end too (the failure mode of a real model
there: it nearly always predicts something where the derived click lands), and is less sure
where the image no longer shows the object.

:func:`guard_failures` runs a propagation of that model with a rule on a textured volume with a
disk of contrast on planes ``FIRST..LAST`` (bright, then dark) and says what went wrong: slices
written more than one plane past the object's ends, or object slices left out. The calibration
(:func:`~napari_adaptiveclick.learning.propagation_calibration.fit_stop_rule`) only keeps stop
levels a rule passes it with, and the tests hold the shipped rule to it.
"""

from __future__ import annotations

import numpy as np

from napari_adaptiveclick.interactive.boxed import box_slices
from napari_adaptiveclick.interactive.session import Prediction
from napari_adaptiveclick.volume.consistency import EVERY_VALUE, trim_to_range
from napari_adaptiveclick.volume.edits import Run, replace_object
from napari_adaptiveclick.volume.propagation import Propagation, PropagationSettings
from napari_adaptiveclick.volume.records import record_of
from napari_adaptiveclick.volume.slicing import SliceGeometry
from napari_adaptiveclick.volume.stopping import StopRule

PLANES, SIZE, FIRST, LAST = 20, 96, 5, 12  # the object is on planes 5..12
SOURCE = 8  # the annotated plane


def guard_volume(seed: int = 0, dark: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Textured background with a disk of contrast on planes FIRST..LAST (radius varies)."""
    rng = np.random.default_rng(seed)
    image = rng.normal(0.5, 0.05, (PLANES, SIZE, SIZE)).astype(np.float32)
    truth = np.zeros(image.shape, bool)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for plane in range(FIRST, LAST + 1):
        radius = 22 - 2.5 * abs(plane - 8.5)
        truth[plane] = (yy - 48) ** 2 + (xx - 46) ** 2 < radius**2
    image[truth] += -0.3 if dark else 0.3
    return image, truth


class StubbornModel:
    """A propagation target whose "model" returns the previous slice's mask wherever it is
    asked. Like the real one it is less sure where the image no longer shows the object
    (calibration logs of the shipped model: confidence |2p - 1| on object slices 0.62 / 0.74 /
    0.82 at the 10th / 50th / 90th percentile, past the end 0.24 / 0.44 / 0.70; this one gives
    0.76 on the object and 0.24 off it)."""

    def __init__(self, image: np.ndarray, start: np.ndarray, start_plane: int) -> None:
        self.geometry = SliceGeometry(image.shape, 0)
        self.image, self.stats = image, (0.0, 1.0)
        self.labels = np.zeros(image.shape, np.int32)
        self.labels[start_plane][start] = 1
        self.last: np.ndarray | None = None
        self.object_id = 1

    def mask(self, plane: int, object_id: int | None = None) -> np.ndarray:
        return self.labels[plane] == 1

    def anchor_planes(self, object_id: int | None = None) -> set[int]:
        return set()

    def start_mask(self, plane: int) -> np.ndarray | None:
        return None

    def predict_click(self, plane: int, click):
        previous = self.mask(plane - 1) if self.mask(plane - 1).any() else self.mask(plane + 1)
        supported = np.abs(self.image[plane] - 0.5) > 0.15  # the disk differs from the tissue
        probability = np.where(previous, np.where(supported, 0.88, 0.62), 0.1).astype(np.float32)
        return Run.starting_from(1, plane, previous), Prediction(probability, previous), 0.0

    def written_mask(self, plane: int, mask: np.ndarray, box=None) -> np.ndarray:
        return mask  # (the mask inside ``box``, the prediction's: here the whole slice)

    def plane_values(self, plane: int, box) -> np.ndarray:
        return self.image[plane][box_slices(box)]

    def trimmed_mask(self, plane: int, mask: np.ndarray, box, keep) -> np.ndarray:
        return trim_to_range(mask, self.plane_values(plane, box), keep)

    def accept_click(
        self, run: Run, click, mask: np.ndarray, step, box=None, keep=EVERY_VALUE, threshold=None
    ):
        replace_object(self.labels[run.plane], run.plane, 1, mask, box=box)
        return record_of(
            click,
            self.geometry.slice_shape,
            plane=run.plane,
            object_id=1,
            intensity_min=keep.low,
            intensity_max=keep.high,
            threshold=threshold,
        )

    def written(self) -> set[int]:
        """The planes that hold the object."""
        return {p for p in range(PLANES) if self.mask(p).any()}


def guard_failures(rule: StopRule | None, intensity_quantile: float | None = None) -> list[str]:
    """What goes wrong when ``rule`` stops the :class:`StubbornModel`'s propagation from plane
    :data:`SOURCE` (bright and dark disks): empty when it stops within one plane of each end
    and writes every plane inside. The propagation trims as the rule was fitted for
    (``intensity_quantile``; None: no trim): past the disks' ends the copied mask is all
    tissue, so the trim is not made there (it would take the whole mask) and only the rule,
    with the share the trim would have kept as its evidence, can stop it."""
    failures = []
    for dark in (False, True):
        image, truth = guard_volume(dark=dark)
        target = StubbornModel(image, truth[SOURCE], SOURCE)
        list(
            Propagation(
                target,
                SOURCE,
                PropagationSettings(stop_rule=rule, intensity_quantile=intensity_quantile),
            )
        )
        written, kind = target.written(), "dark" if dark else "bright"
        too_far = sorted(written - set(range(FIRST - 1, LAST + 2)))
        missed = sorted(set(range(FIRST + 1, LAST)) - written)
        if too_far:
            failures.append(f"{kind} disk: written past its ends on planes {too_far}")
        if missed:
            failures.append(f"{kind} disk: planes {missed} inside it left out")
    return failures
