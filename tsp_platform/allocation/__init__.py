"""Allocation: risk profiles × engines over the selected atoms, covariance estimation, regime detection."""
