"""The fair-queue core: pure policy, estimates, the reference model and the Redis scripts; imports no Django."""
