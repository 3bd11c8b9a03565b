"""Running a training: the job (claims run folders, opens loggers, marks statuses, turns failures
into one line) → the loop (K members in lock-step) → one step; beside them the fused modules, the
random streams, a run's history and checkpoints, the loggers and the device."""
