"""The statistics table node of a segmentation: one row for the liver, one for all tumors, one per
lesion (the columns of `reporting.tables.STATISTICS_COLUMNS`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..reporting.tables import STATISTICS_COLUMNS, TEXT_COLUMNS, statistics_rows

# Node reference role from a segmentation node to its statistics table node.
STATISTICS_TABLE_ROLE = "LiverTumorSegStatistics"


def write_statistics_table(scene, statistics: dict, segmentationNode):
    """Create or refresh the table node that `segmentationNode` references; return it."""
    import vtk

    table = segmentationNode.GetNodeReference(STATISTICS_TABLE_ROLE)
    if table is None:
        table = scene.AddNewNodeByClass("vtkMRMLTableNode", f"{segmentationNode.GetName()} statistics")
        segmentationNode.SetNodeReferenceID(STATISTICS_TABLE_ROLE, table.GetID())
    rows = statistics_rows(statistics)
    vtkTable = table.GetTable()
    vtkTable.Initialize()
    for column in STATISTICS_COLUMNS:
        array = vtk.vtkStringArray() if column in TEXT_COLUMNS else vtk.vtkDoubleArray()
        array.SetName(column)
        for row in rows:
            value = row[column]
            if column in TEXT_COLUMNS:
                array.InsertNextValue("" if value is None else str(value))
            else:
                array.InsertNextValue(np.nan if value is None else float(value))
        vtkTable.AddColumn(array)
    table.Modified()
    return table


def table_rows(tableNode) -> list[dict[str, Any]]:
    """The rows of a statistics table node as dictionaries (NaN becomes None)."""
    table = tableNode.GetTable()
    rows = []
    for r in range(table.GetNumberOfRows()):
        row = {}
        for c in range(table.GetNumberOfColumns()):
            value = table.GetValue(r, c)
            value = value.ToString() if value.IsString() else value.ToDouble()
            row[table.GetColumnName(c)] = None if isinstance(value, float) and np.isnan(value) else value
        rows.append(row)
    return rows
