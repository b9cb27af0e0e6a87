"""The DuckDB lakehouse: tables, transactional writes and point-in-time reads."""

from tsp_platform.lakehouse.schema import TABLES, Table
from tsp_platform.lakehouse.store import Lakehouse, LakehouseError

__all__ = ["TABLES", "Lakehouse", "LakehouseError", "Table"]
