"""Measuring interactive segmentation: the NoC click simulator, metrics, a baseline.

Owns: the next-click rule of the standard protocol (:mod:`.simulator`), the NoC / NoF / mIoU
evaluation loop (:mod:`.noc`), the non-learned random-walker baseline
(:mod:`.baseline`), and what an evaluation run writes and how runs are compared
(:mod:`.report`).

May import: ``interactive``, ``models``, ``io``.
"""
