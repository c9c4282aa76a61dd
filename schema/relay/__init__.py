"""The Relay machinery: global ids and ``Node``, connections and edges, keyset pagination, and the
``node``/``nodes`` root fields.
"""
