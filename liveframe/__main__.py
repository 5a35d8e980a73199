import sys

from liveframe.cli import main

sys.exit(main())
