"""Training (issue 3): the loop (:mod:`.loop`), run folder and checkpoints (:mod:`.rundir`, :mod:`.state`),
data order (:mod:`.batches`), schedules (:mod:`.schedule`), logging (:mod:`.metrics`) and sample grids
(:mod:`.samples`). Entry point: ``a3gan train`` or :func:`a3gan.training.loop.train`."""
