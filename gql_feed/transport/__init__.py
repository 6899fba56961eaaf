"""How bytes arrive and leave: one package per family, each a thin adapter over `engine`."""
