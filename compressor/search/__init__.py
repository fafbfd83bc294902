"""Goal-driven compression: a budget in, candidates measured as ordinary jobs, the best one out."""
