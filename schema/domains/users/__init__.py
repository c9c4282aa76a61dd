"""Users: the ``User`` type, its root fields and batch resolvers, and the user mutations."""
