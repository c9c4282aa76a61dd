"""The read path: DataLoaders and their batch statements, how batch resolvers load and the fields
they declare, keyset SQL, visibility rules, column pruning and folding of to-one reads.
"""
