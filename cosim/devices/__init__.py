"""Device compact models, circuit generators and characterisation testbenches (FeCap, FeLIF, RRAM, crossbar)."""
