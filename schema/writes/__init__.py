"""The write path: the unit of work and the operation's transaction, input checks, flushing, and
typed mutation errors.
"""
