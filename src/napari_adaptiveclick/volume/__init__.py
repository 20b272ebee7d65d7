"""Slice-by-slice click segmentation of objects in a label volume, and propagation.

The public names live in small modules and are gathered here:

- :mod:`.slicing`: :class:`SliceGeometry` (how a volume is cut into slices, axis
  convention) and :func:`default_slicing_axis`;
- :mod:`.annotator`: :class:`VolumeAnnotator` (clicks, object ids, undo);
  :mod:`.prompt_annotation`: its scribbles, boxes and mask prompts ("refine this label");
- :mod:`.edits`: the edit log (runs of records, undo steps, :class:`PlanePatch`,
  :class:`ClickOutcome`);
- :mod:`.predictor`: the ClickSession kept in step with the runs;
- :mod:`.propagation`: :class:`Propagation`, its settings and reports (its prompts,
  :func:`derived_click` among them: :mod:`.propagation_prompts`);
- :mod:`.records`: :class:`~.records.ClickRecord`, a prompt as kept for provenance (with
  the mask threshold it was made at); :mod:`.clicks_file`: their CSV / JSON files;
- :mod:`.replay`: :func:`replay_records`, labels from a click record file (every record
  checked first: :mod:`.replay_checks`);
- :mod:`.autosave`: :class:`~.autosave.AutosaveStore`, the crash-safe store of an annotation's
  records and changed label tiles (a journal, written in the background:
  :mod:`.autosave_queue`; its parts: :mod:`.autosave_format`, :mod:`.autosave_state`);
  :mod:`.image_key`: which image a store belongs to, and where.

One rule decides what the model sees, for clicks made by a user, clicks derived by
:class:`Propagation` and clicks replayed from a record file alike, so that replaying the
records of a session (:func:`replay_records`) gives back its labels:

1. Records (clicks, scribbles, boxes, masks: :mod:`.records`) are applied in ``order``.
   Consecutive records of the same object on the same plane form a *run*, predicted by one
   :class:`~napari_adaptiveclick.interactive.session.ClickSession`; a mask record always
   starts a new run.
2. A run starts from a previous mask (the *prior*): the object's current mask on that plane;
   if that is empty, its mask on an adjacent plane (the one nearer to the plane of the
   object's previous run, the lower one on ties), so that working slice by slice carries the
   object from one slice to the next; else nothing. A mask record's run starts from its mask.
3. After every click the object's pixels on that plane are replaced by the predicted mask,
   leaving pixels of other objects alone unless ``overwrite`` is set; a record with an
   intensity range (a trimmed propagated slice) writes that mask trimmed to the range, holes
   given back (:func:`~napari_adaptiveclick.volume.consistency.trim_to_range`).

Manual edits of the labels (painting) are not part of the record.
Torch is used only through the ClickSession; napari is never imported here.

May import: ``interactive``, ``evaluation`` (the next-click rule), ``models``, ``io``.
"""

from __future__ import annotations

from napari_adaptiveclick.volume.annotator import VolumeAnnotator
from napari_adaptiveclick.volume.edits import ClickOutcome, PlanePatch
from napari_adaptiveclick.volume.propagation import (
    PropagatedSlice,
    Propagation,
    PropagationReport,
    PropagationSettings,
)
from napari_adaptiveclick.volume.propagation_prompts import derived_click
from napari_adaptiveclick.volume.replay import replay_records
from napari_adaptiveclick.volume.slicing import SliceGeometry, default_slicing_axis

__all__ = [
    "ClickOutcome",
    "PlanePatch",
    "PropagatedSlice",
    "Propagation",
    "PropagationReport",
    "PropagationSettings",
    "SliceGeometry",
    "VolumeAnnotator",
    "default_slicing_axis",
    "derived_click",
    "replay_records",
]
