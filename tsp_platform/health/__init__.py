"""Data-health gates."""

from tsp_platform.health.gates import GATE_DESCRIPTIONS, Gate, GateInputs, evaluate_gates

__all__ = ["GATE_DESCRIPTIONS", "Gate", "GateInputs", "evaluate_gates"]
