"""The write path: the unit of work and the operation's transaction, input checks, finding the
row a viewer may change, flushing, inserts that tolerate concurrent ones, and typed mutation
errors.
"""
