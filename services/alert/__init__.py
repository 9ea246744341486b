"""alert: rules over tracks (zones, lines, occupancy, classes, silence, input quality) and
over drift episodes."""
