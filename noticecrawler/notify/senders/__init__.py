"""Push backends behind one interface (issue 13)."""
