"""Measuring interactive segmentation: the NoC click simulator, metrics, a baseline.

Owns: the next-click rule of the standard protocol (:mod:`.simulator`), the NoC / NoF / mIoU
evaluation loop (:mod:`.noc`) and the non-learned random-walker baseline
(:mod:`.baseline`).

May import: ``interactive``, ``models``, ``io``.
"""
