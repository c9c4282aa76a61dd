"""The Relay machinery: global ids and ``Node`` (and making any registered node type's objects
from its rows), connections and edges, their arguments and cursors, and the ``node``/``nodes``
root fields.
"""
