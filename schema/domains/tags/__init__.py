"""Tags: the ``Tag`` type, its root fields and batch resolvers."""
