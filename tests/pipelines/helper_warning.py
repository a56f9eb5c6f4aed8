"""A warning class of a module only a helper process imports (tests/pipelines/test_worker)."""


class HelperWarning(DeprecationWarning):
    """A library's own category, as SQLAlchemy's SADeprecationWarning is."""
