import sys

from daemon.workers.main import main

sys.exit(main())
