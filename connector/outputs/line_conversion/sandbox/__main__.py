"""`python -m connector.outputs.line_conversion.sandbox` runs the sandbox CLI (the same as
`connector sandbox`)."""
import sys

from .cli import main

sys.exit(main())
