"""Master and sectoral updates: population and sectoral changes -> re-linked members and link updates."""
