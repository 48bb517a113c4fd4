"""The `mvcap calibrate` subcommands: file and video I/O around the methods in calibration/."""
