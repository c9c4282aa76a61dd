"""Posts: the ``Post`` type, its root fields and batch resolvers, the post mutations and the
subscriptions to post and comment events.
"""
