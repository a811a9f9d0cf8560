"""Fine forward pass of BRUNO (no autograd). Currently the torch reference loop; the fused kernel follows."""
from __future__ import annotations

from cosim.felif.integrators import fine_forward_reference as fine_forward

__all__ = ["fine_forward"]
