"""The jedisith network and everything needed to serve it.

Nothing in this package imports discord or the training code, and importing it is cheap:
TensorFlow is imported only by the functions that need it.
"""
