"""Selection: point-in-time features, scoring, correlation clustering, the HTR policy and strategy atoms."""
