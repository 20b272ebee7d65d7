"""Interactive segmentation of one object on one 2D image.

Owns: the prompt kinds and their encodings (:mod:`.prompts`), image transforms with their
coordinate inverses and intensity normalisation (:mod:`.transforms`), the focus crop
(:mod:`.focus`), the one prediction path from image + prompts + prior to probability
(:mod:`.predict`), :class:`~.session.ClickSession` (prompts in, probability and mask out,
undo), what it returns and keeps per undo level (:mod:`.results`), and arrays that are zero
outside a box (:mod:`.boxed`), which keep a click's cost to its focus crop.

May import: ``models``, ``io``.
"""
