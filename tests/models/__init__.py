"""Model tests: every model's test class inherits :class:`.conformance.ModelConformance`."""
