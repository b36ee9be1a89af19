"""Per-user weights for the fairness policy."""
