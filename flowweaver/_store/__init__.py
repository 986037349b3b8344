"""State stores without their async/blocking forms: formats, records, file and database I/O,
resume rules, and the session protocol the engine uses."""
