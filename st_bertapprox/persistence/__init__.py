"""Loading our models without remote code, saving and pushing them, model cards (``templates/``)."""
