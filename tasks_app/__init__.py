"""Task submission, the fairness policy, the fair queue and task history."""
