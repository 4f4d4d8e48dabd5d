"""The Qt-free engine: files, tensors, models and numbers.

Nothing under this package may import Qt, so the command line runs on a
headless GPU server and the GUI stays a thin view over the same code. Nor
does importing the package import torch: listing and decoding (``sources``,
``decode``, ``decode_ahead``) run without it, so the command line starts them
while torch loads (``devices.py`` sets torch's process settings when it does).
"""

import os

# The model's OpenMP threads share the CPU with the decode threads and the
# window; spinning at each layer's barrier (the default) then stalls the
# whole team whenever one core is busy elsewhere. Measured on a 2-core
# machine: runs of 200 photos varied from 4 to 75 img/s with spinning, and
# held 60-80 img/s with passive waiting. Only takes effect if torch is not
# yet imported; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
