"""Learning: losses, matcher, criterion, sampler, augmentation, datasets, the trainer.

Installed with the package so the plugin can adapt models to a user's annotations;
``training/`` at the repository root keeps the command-line entry points over it.

May import: ``volume``, ``evaluation``, ``interactive``, ``models``, ``io``.
"""
