"""Building served endpoints at start-up: adapters, the stage list (one module decides it:
:mod:`.stage_list`), the pipeline, and the AI Gateway services the stages share (:mod:`.services`)."""
