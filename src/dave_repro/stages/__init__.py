"""The stages, one module per kind: data, runs (train, evaluate), studies, reports.

Every stage is the same skeleton (:func:`.base.execute`): take its artifact lock, remove what an
interrupted earlier run left, skip itself when its manifest records the same fingerprint and its
outputs still hash as recorded, else do the work and write the manifest. Both engines reach them
only through the ``dave`` CLI. Nothing below this package imports it.
"""
