"""`connector outputs`: the registered output types and their parameters."""
from __future__ import annotations

import argparse
from typing import Sequence

from connector.outputs import available_outputs

from .docs import parameters_text


def main(argv: Sequence[str]) -> int:
    argparse.ArgumentParser(prog="connector outputs",
                            description="List the registered output types and their parameters."
                            ).parse_args(argv)
    for name, cls in sorted(available_outputs().items()):
        schema = cls.schema()
        print(f"{name}: {schema.get('title', '')}")
        print(f"  {schema.get('description', '')}")
        print(parameters_text(schema))
        print()
    return 0
