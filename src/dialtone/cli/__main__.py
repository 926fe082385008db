import sys

from dialtone.cli import main

sys.exit(main())
