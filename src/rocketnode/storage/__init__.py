"""Storage: narrow ports per area (``ports``), records that cross them, and the backends."""
