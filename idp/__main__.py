import sys

from idp.cli import main

sys.exit(main())
