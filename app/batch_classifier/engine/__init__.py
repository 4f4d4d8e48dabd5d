"""The Qt-free engine: files, tensors, models and numbers.

Nothing under this package may import Qt, so the command line runs on a
headless GPU server and the GUI stays a thin view over the same code.
"""

import os

# The model's OpenMP threads share the CPU with the decode threads and the
# window; spinning at each layer's barrier (the default) then stalls the
# whole team whenever one core is busy elsewhere. Measured on a 2-core
# machine: runs of 200 photos varied from 4 to 75 img/s with spinning, and
# held 60-80 img/s with passive waiting. Only takes effect if torch is not
# yet imported; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402 - after the OpenMP setting above

# Real photos drive some activations into denormal floats, which x86 cores
# process up to 100x slower: measured 1,670 ms instead of 15 ms for one image
# through EfficientNet-Lite0 on a 2-core CPU. The flag lives in each thread's
# floating-point state and new threads inherit it, so it is set here, before
# the model's worker threads (OpenMP, the GUI's worker) exist.
torch.set_flush_denormal(True)
