"""Calibration of the compact models to measured devices (`cosim calibrate`): readers of measurement files, the
FeCap and RRAM fits, device cards."""
