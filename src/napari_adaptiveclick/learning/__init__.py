"""Learning: losses, matcher, criterion, sampler, augmentation, datasets, the trainer.

Owns: the per-pixel mask losses (:mod:`.losses`), Hungarian matching of queries to targets
(:mod:`.matcher`) and the deep-supervised set criterion (:mod:`.criterion`); initial clicks
(:mod:`.sampler`); joint augmentation and domain randomisation (:mod:`.augment`, with the
smooth random fields of :mod:`.random_fields`); the object datasets of every data layout and
the synthetic scenes (:mod:`.datasets`); a run's options (:mod:`.config`), its folder (log and
checkpoints that survive kills, :mod:`.run_folder`) and the iterative click training loop
(:mod:`.trainer`); a NoC evaluation run on a dataset split (:mod:`.evaluation_run`); and
adaptation of a trained model to a user's labelled objects, measured on held-out ones
(:mod:`.adapt`, with its input and split in :mod:`.adapt_data` and the run from input to
checkpoint in :mod:`.adapt_job`).

Installed with the package so the plugin can adapt models to a user's annotations;
``training/`` at the repository root keeps the command-line entry points over it.

May import: ``volume``, ``evaluation``, ``interactive``, ``models``, ``io``.
"""
