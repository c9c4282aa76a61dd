"""Comments: the ``Comment`` type, its batch resolvers and the comment mutations."""
