"""Offline analysis: the whole edge logic on recorded footage, in video time."""
