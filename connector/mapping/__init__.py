"""The mapping stage, between the query and the output: which result columns reach the output,
under which names, and which are built (Treasure Data's output mapping for activations). It
compiles to a SQL projection around the user's query, so the engine does the work and
everything after it sees plain columns. The binding then resolves the mapped names against the
output's columns once per run.
"""
from .binding import ColumnBinding, bind_columns
from .projection import MappedQuery, compile_mapping
from .spec import (
    METADATA_KEYS,
    MappedColumn,
    OutputMapping,
    Piece,
    mapping_to_dict,
    parse_mapping,
    parse_metadata,
    parse_metadata_args,
    read_mapping,
)

__all__ = ["METADATA_KEYS", "ColumnBinding", "MappedColumn", "MappedQuery", "OutputMapping",
           "Piece", "bind_columns", "compile_mapping", "mapping_to_dict", "parse_mapping", "parse_metadata",
           "parse_metadata_args", "read_mapping"]
