"""anycast-tui: which flows did this event move, and which will the next one move?"""

__version__ = "0.1.0"
