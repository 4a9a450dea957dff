"""`python -m connector.sandbox` runs the sandbox CLI (same as `python -m connector sandbox`)."""
import sys

from .cli import main

sys.exit(main())
