"""The scheduler service: delayed and recurring jobs, sweeps; one leader at a time."""
