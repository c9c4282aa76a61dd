"""The read path: DataLoaders and their batch statements, visibility rules, column pruning and
folding of to-one reads.
"""
