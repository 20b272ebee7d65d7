"""The network and its identity: configs, the registry, checkpoint reading.

Owns: the frozen model configs (:mod:`.config`), the registry (:mod:`.registry`: name ->
config and builder, family, whether trained weights are installed; the only place
hyperparameters live), checkpoint reading, verification and release key mapping
(:mod:`.checkpoint`; :mod:`.unpickle` reads the release's pickles safely, :mod:`.errors`
holds the errors), the device choice (:mod:`.device`) and the network itself
(:mod:`.network`, torch only, one component per file).

May import: nothing else of this package (lowest layer, beside ``io``).
"""
