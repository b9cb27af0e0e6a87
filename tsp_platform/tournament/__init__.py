"""Walk-forward tournaments: windows, simulators, honest metrics, the strict scoreboard."""
