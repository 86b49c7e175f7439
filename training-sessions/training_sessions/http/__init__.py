"""The HTTP glue both services share: the one error-to-HTTP mapping and the pages.

The only part of ``training_sessions`` that imports FastAPI or Starlette (an
import-linter contract keeps it so); the runtime itself knows nothing of HTTP.
"""
