"""End to end against real servers: a hostile neighbour beside an honest subject, and a third-party gateway."""
