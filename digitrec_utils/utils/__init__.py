"""Files written atomically, run-folder paths and the environment a report records."""
