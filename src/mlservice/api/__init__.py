"""HTTP routes, one blueprint per resource. Routes stay thin: they call domain code."""
