import sys

from lastack.cli import main

sys.exit(main())
