"""The shared data and every reader: ``records`` (one reader per format), ``shared`` (the shared datasets, the
teacher's folder), ``corpus`` (the texts of a recipe)."""
