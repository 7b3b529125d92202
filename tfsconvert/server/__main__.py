"""`python -m tfsconvert.server`: the `tensorflow_model_server` look-alike."""

import sys

from tfsconvert.server.main import main

sys.exit(main(sys.argv[1:]))
