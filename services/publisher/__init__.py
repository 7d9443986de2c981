"""The publisher service: linkage outputs -> purpose-bound, pseudonymised notifications per subscriber."""
